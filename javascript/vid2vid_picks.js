// vid2vid: the Jobs tab's keyframe candidates (lib_vid2vid/keyframe_view.py writes the radio buttons).
// Choosing a candidate writes every keyframe's checked candidate, "frame:candidate, ...", into the
// "Keyframe picks" box, and tells gradio the box changed (as the WebUI's own updateInput does).
function vid2vidPick(radio, targetId) {
    const box = radio.closest(".vid2vid-candidates");
    if (!box) return;
    const picks = Array.from(box.querySelectorAll("input[type=radio]:checked"))
        .map((r) => [Number(r.dataset.frame), r.value])
        .sort((a, b) => a[0] - b[0])
        .map(([f, c]) => f + ":" + c)
        .join(", ");
    const field = document.querySelector("#" + targetId + " textarea, #" + targetId + " input");
    if (!field) return;
    field.value = picks;
    if (typeof updateInput === "function") {
        updateInput(field);
    } else {
        field.dispatchEvent(new Event("input", {bubbles: true}));
    }
}
