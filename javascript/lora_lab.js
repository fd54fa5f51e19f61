// All of LoRA Lab's browser code hangs off one namespace: every extension's javascript/*.js shares
// the page's global scope in the WebUI.
(function () {
    "use strict";
    const LoraLab = window.LoraLab || {};
    LoraLab.root = function () {
        const app = typeof gradioApp === "function" ? gradioApp() : document;
        return app.querySelector("#tab_lora_lab");
    };
    window.LoraLab = LoraLab;
})();
