"""WD14 tagging with ONNX Runtime (imported lazily: loading this package costs no onnxruntime)."""
from .labels import Labels, LabelsError, read_labels
from .model import (KNOWN_MODELS, ModelInfo, Tagger, TaggerError, choose_providers, download_model,
                    find_models, load_tagger, loaded_taggers, resolve_model, taggers_dir,
                    unload_taggers)
from .postprocess import (KAOMOJI, ScoredTag, Selection, TagOptions, format_tag, mcut_threshold,
                          select_tags)
from .predict import Prediction, predict_files
from .preprocess import load_model_input, to_model_input
from .run import (Problem, TagRunOptions, TagRunResult, caption_bytes, preview_tags,
                  tag_folder)

__all__ = ["KAOMOJI", "KNOWN_MODELS", "Labels", "LabelsError", "ModelInfo", "Prediction",
           "Problem", "ScoredTag", "Selection", "TagOptions", "TagRunOptions", "TagRunResult",
           "Tagger", "TaggerError", "caption_bytes", "choose_providers", "download_model",
           "find_models", "format_tag", "load_model_input", "load_tagger", "loaded_taggers",
           "mcut_threshold", "predict_files", "preview_tags", "read_labels", "resolve_model",
           "select_tags", "tag_folder", "taggers_dir", "to_model_input", "unload_taggers"]
