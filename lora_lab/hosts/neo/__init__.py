"""The Forge Neo 2.26 adapter (imported only inside Neo): its engines' model objects for training
(made trainable for one run and put back), its LoRA loader and reload path."""
