// Give each <model-viewer data-glb="KEY"> its mesh: the GLB's bytes come base64 from a script that set
// DREAMLIFT_GLB[KEY] (a page opened from file:// may not fetch files), handed to the viewer as a blob: URL.
// The viewer's outcome is left on it as data-loaded="true" or data-load-error="…", for people and tests alike.
(function () {
  var meshes = window.DREAMLIFT_GLB || {};
  document.querySelectorAll("model-viewer[data-glb]").forEach(function (viewer) {
    viewer.addEventListener("load", function () {
      viewer.setAttribute("data-loaded", "true");
    });
    viewer.addEventListener("error", function (event) {
      var detail = event.detail || {};
      viewer.setAttribute("data-load-error", String(detail.type || detail.sourceError || "error"));
    });
    var base64 = meshes[viewer.dataset.glb];
    if (!base64) {
      viewer.setAttribute("data-load-error", "missing mesh script");
      return;
    }
    var text = atob(base64);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    viewer.src = URL.createObjectURL(new Blob([bytes], { type: "model/gltf-binary" }));
  });
})();
