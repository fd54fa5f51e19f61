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

// Review sub-tab: H = hit, M = miss, U = clear, ← / → = previous / next image. The keys work only
// while the Review tab is on screen and focus is not in a field one types into.
(function () {
    "use strict";
    const LoraLab = window.LoraLab || {};
    LoraLab.reviewKeys = {
        h: "lora_lab_review_hit", m: "lora_lab_review_miss", u: "lora_lab_review_clear",
        ArrowLeft: "lora_lab_review_prev", ArrowRight: "lora_lab_review_next",
    };
    LoraLab.isTyping = function (el) {
        if (!el || !el.tagName) return false;
        const tag = el.tagName.toUpperCase();
        if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
        return tag === "INPUT" && !["checkbox", "radio", "button", "submit", "range"].includes(el.type);
    };
    LoraLab.onReviewKey = function (event) {
        if (event.ctrlKey || event.altKey || event.metaKey || event.defaultPrevented) return;
        const target = event.composedPath ? event.composedPath()[0] : event.target;
        if (LoraLab.isTyping(target)) return;
        const id = LoraLab.reviewKeys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
        const root = id && LoraLab.root();
        const button = root && root.querySelector("#" + id);
        if (!button || button.offsetParent === null) return;
        event.preventDefault();
        button.click();
    };
    if (!LoraLab.reviewKeysInstalled) {
        document.addEventListener("keydown", LoraLab.onReviewKey);
        LoraLab.reviewKeysInstalled = true;
    }
    window.LoraLab = LoraLab;
})();

// Dataset review: ← / → browse images (focus outside text fields); Ctrl+Enter in the caption box
// saves it and moves to the next image.
(function () {
    "use strict";
    const LoraLab = window.LoraLab || {};
    LoraLab.visibleButton = function (id) {
        const root = LoraLab.root();
        const button = root && root.querySelector("#" + id);
        return button && button.offsetParent !== null ? button : null;
    };
    LoraLab.onDatasetReviewKey = function (event) {
        if (event.defaultPrevented || event.altKey || event.metaKey) return;
        const target = event.composedPath ? event.composedPath()[0] : event.target;
        const inCaption = target && target.closest && target.closest("#lora_lab_dsreview_caption");
        if (event.ctrlKey && event.key === "Enter" && inCaption) {
            const save = LoraLab.visibleButton("lora_lab_dsreview_save");
            const next = LoraLab.visibleButton("lora_lab_dsreview_next");
            if (!save) return;
            event.preventDefault();
            target.dispatchEvent(new Event("input", {bubbles: true}));
            save.click();
            if (next) setTimeout(function () { next.click(); }, 300);
            return;
        }
        if (event.ctrlKey || LoraLab.isTyping(target)) return;
        const id = {ArrowLeft: "lora_lab_dsreview_prev", ArrowRight: "lora_lab_dsreview_next"}[event.key];
        const button = id && LoraLab.visibleButton(id);
        if (!button) return;
        event.preventDefault();
        button.click();
    };
    if (!LoraLab.datasetKeysInstalled) {
        document.addEventListener("keydown", LoraLab.onDatasetReviewKey);
        LoraLab.datasetKeysInstalled = true;
    }
    window.LoraLab = LoraLab;
})();

// Long jobs (tagging, training) in the WebUI run as WebUI tasks, so the WebUI's own progress bar
// (ETA, step text, live preview) follows them in the given container; the first argument of the
// click handler becomes the task id.
(function () {
    "use strict";
    const LoraLab = window.LoraLab || {};
    LoraLab.startTask = function (containerId, args) {
        args = Array.from(args);
        if (typeof requestProgress === "function" && typeof randomId === "function") {
            const id = randomId();
            const container = gradioApp().querySelector("#" + containerId);
            requestProgress(id, container, null, function () {}, function () {});
            args[0] = id;
        }
        return args;
    };
    window.LoraLab = LoraLab;
})();

// Header: the model line is right when the page opens (the WebUI may still be loading the model
// then: look again every few seconds until one is there) and follows checkpoint changes.
(function () {
    "use strict";
    const LoraLab = window.LoraLab || {};
    LoraLab.statusRetries = 0;
    LoraLab.refreshStatus = function () {
        const root = LoraLab.root();
        const button = root && root.querySelector("#lora_lab_refresh");
        if (!button) return;
        button.click();
        setTimeout(function () {
            const status = root.querySelector("#lora_lab_status");
            const waiting = status && /no model loaded/.test(status.textContent || "");
            if (waiting && LoraLab.statusRetries < 60) {
                LoraLab.statusRetries += 1;
                LoraLab.refreshStatus();
            }
        }, 3000);
    };
    if (!LoraLab.statusHooksInstalled && typeof onUiLoaded === "function") {
        onUiLoaded(LoraLab.refreshStatus);
        if (typeof onOptionsChanged === "function") {
            let last = null;
            onOptionsChanged(function () {
                const current = typeof opts === "object" ? opts.sd_model_checkpoint : null;
                if (current !== last) {
                    last = current;
                    LoraLab.statusRetries = 0;
                    LoraLab.refreshStatus();
                }
            });
        }
        LoraLab.statusHooksInstalled = true;
    }
    window.LoraLab = LoraLab;
})();
