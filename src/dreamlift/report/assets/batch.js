// The batch page's filter: a job card shows when its state's box is ticked and its prompt contains the search text.
(function () {
  var boxes = document.querySelectorAll("input[data-state-filter]");
  var search = document.getElementById("search");
  var jobs = document.querySelectorAll(".job");
  var shown = document.getElementById("shown");
  function apply() {
    var states = {};
    boxes.forEach(function (box) { states[box.dataset.stateFilter] = box.checked; });
    var needle = search.value.trim().toLowerCase();
    var count = 0;
    jobs.forEach(function (job) {
      var visible = states[job.dataset.state] !== false && job.dataset.prompt.indexOf(needle) !== -1;
      job.hidden = !visible;
      if (visible) count++;
    });
    shown.textContent = String(count);
  }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  // Turntables play while the pointer is over them.
  document.querySelectorAll("video.thumb").forEach(function (clip) {
    clip.addEventListener("mouseenter", function () { clip.play(); });
    clip.addEventListener("mouseleave", function () { clip.pause(); });
  });
  apply();
})();
