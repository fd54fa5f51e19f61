"""Built-in showcase templates per preset, in Dynamic Prompts syntax (`{a|b}`), expanded once with
a fixed seed: prompts outside the training data that show whether the LoRA still follows a prompt.
`{trigger}` is replaced by the trigger word first."""
from __future__ import annotations

TEMPLATES: dict[str, list[str]] = {
    "character": [
        "{trigger}, solo, {standing|sitting|walking|running}, {smile|closed mouth|open mouth}, "
        "{outdoors, city street|indoors, library|beach, ocean|forest, trees}",
        "{trigger}, {upper body|full body|portrait}, {red|blue|black|white} {jacket|dress|shirt}, "
        "{night|day|sunset}",
        "{trigger}, {holding umbrella|holding cup|holding book}, {rain|snow|sunlight}, {from side|from above}",
    ],
    "style": [
        "{trigger}, {a cat|a mountain landscape|a city street|a bowl of fruit|a castle}, "
        "{day|night|sunset}, {no humans|1girl|1boy}",
        "{trigger}, {portrait|full body} of {an old man|a young woman|a knight|a robot}, "
        "{indoors|outdoors}",
        "{trigger}, {still life|seascape|forest|interior}, {warm|cold} {light|colors}",
    ],
    "concept": [
        "{trigger}, {1girl|1boy|no humans}, {indoors|outdoors}, {day|night}",
        "{trigger}, {on a table|on the ground|in the sky|underwater}, {simple background|detailed background}",
        "{trigger}, {red|blue|green|yellow} theme, {close-up|wide shot}",
    ],
}


def with_trigger(templates: list[str], trigger: str) -> list[str]:
    """The templates with `{trigger}` filled in (the preset's, or the person's own)."""
    return [t.replace("{trigger}", trigger) for t in templates]
