// The studio's page: queue jobs from the form, follow every job on the server's event stream (/events), show the
// selected one. Everything a job says (its prompt, its error) is written as text, never parsed as HTML.
// For people and tests alike, the page leaves what it showed on its elements: data-state, data-step, data-loaded.
(function () {
  "use strict";
  var form = document.getElementById("job-form");
  var formError = document.getElementById("form-error");
  var list = document.getElementById("jobs");
  var detail = document.getElementById("detail");
  var live = document.getElementById("live");
  var jobs = [];
  var selected = null;
  // What the page has shown of the newest renders: [{step, url, writtenAt, shownAt}] (ms since the epoch).
  window.studioRenders = [];

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return Math.round(seconds) + " s";
    return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  }

  function stepText(progress) {
    return progress ? progress.title + ": step " + progress.step + " / " + progress.steps : "";
  }

  // --- the form ------------------------------------------------------------------------------------------------
  function chosenKind() {
    return form.querySelector("input[name=kind]:checked").value;
  }

  function showKind() {
    var kind = chosenKind();
    form.querySelectorAll("[data-kind]").forEach(function (node) {
      var mine = node.dataset.kind === kind;
      node.hidden = !mine;
      if (node.tagName === "SELECT") node.disabled = !mine;
    });
    form.elements.prompt.required = kind !== "text3d" || !form.elements.image.files.length;
  }

  function readPicture(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () {
        resolve({ name: file.name, data: String(reader.result).split(",")[1] || "" });
      };
      reader.onerror = function () {
        reject(new Error("cannot read " + file.name));
      };
      reader.readAsDataURL(file);
    });
  }

  async function submit(event) {
    event.preventDefault();
    formError.textContent = "";
    var kind = chosenKind();
    var body = {
      kind: kind,
      prompt: form.elements.prompt.value,
      config: form.querySelector("select[name=config]:not([disabled])").value,
      seed: form.elements.seed.value,
      steps: form.elements.steps.value,
      model: form.elements.model.value,
      settings: form.elements.settings.value,
    };
    try {
      if (kind === "text3d" && form.elements.image.files.length) {
        body.image = await readPicture(form.elements.image.files[0]);
      }
      var answer = await fetch("/api/jobs", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      var reply = await answer.json();
      if (!answer.ok) throw new Error(reply.error || answer.statusText);
      selected = reply.id;
      render();
    } catch (error) {
      formError.textContent = error.message;
    }
  }

  // --- the jobs ------------------------------------------------------------------------------------------------
  // A job's card is made once and updated in place, so that what a person (or a test) holds stays on the page.
  var cards = {};

  function card(job) {
    var node = cards[job.id];
    if (!node) {
      node = cards[job.id] = element("div", "job");
      node.dataset.id = job.id;
      node.append(element("div", "prompt"), element("div", "meta"), element("div", "error"));
      node.addEventListener("click", function () {
        selected = job.id;
        render();
      });
    }
    node.dataset.state = job.state;
    node.classList.toggle("selected", job.id === selected);
    node.children[0].textContent = job.prompt || "(image-to-3D)";
    var meta = node.children[1];
    meta.replaceChildren(element("span", "state state-" + job.state, job.state));
    var facts = job.kind + (job.progress ? " · " + stepText(job.progress) : "");
    if (job.seconds !== null) facts += " · " + duration(job.seconds);
    meta.appendChild(document.createTextNode(" " + facts));
    node.children[2].textContent = job.error;
    node.children[2].hidden = !job.error;
    return node;
  }

  function showRender(job) {
    var progress = job.progress;
    var figure = document.getElementById("live-figure");
    figure.hidden = !(progress && progress.preview);
    if (!progress || !progress.preview || live.getAttribute("src") === progress.preview) return;
    var written = progress.time * 1000;
    var step = progress.step;
    live.onload = function () {
      window.studioRenders.push({ step: step, url: live.getAttribute("src"), writtenAt: written, shownAt: Date.now() });
      live.dataset.step = String(step);
    };
    live.setAttribute("src", progress.preview);
  }

  // The viewer is made only while there is a mesh to show: a viewer on the page draws frames even when hidden.
  function showMesh(job) {
    var viewer = document.getElementById("viewer");
    if (!job.mesh) {
      if (viewer) viewer.remove();
      return;
    }
    if (viewer && viewer.dataset.src === job.mesh) return;
    if (!viewer) {
      viewer = document.createElement("model-viewer");
      viewer.id = "viewer";
      viewer.className = "viewer";
      viewer.setAttribute("camera-controls", "");
      viewer.setAttribute("interaction-prompt", "none");
      viewer.setAttribute("shadow-intensity", "0.6");
      viewer.setAttribute("exposure", "1");
      viewer.addEventListener("load", function () {
        viewer.setAttribute("data-loaded", "true");
      });
      viewer.addEventListener("error", function (event) {
        var detail = event.detail || {};
        viewer.setAttribute("data-load-error", String(detail.type || detail.sourceError || "error"));
      });
      document.getElementById("viewer-slot").appendChild(viewer);
    }
    viewer.dataset.src = job.mesh;
    viewer.removeAttribute("data-loaded");
    viewer.removeAttribute("data-load-error");
    viewer.src = job.mesh;
  }

  function showDetail(job) {
    detail.hidden = !job;
    if (!job) return;
    detail.dataset.id = job.id;
    detail.dataset.state = job.state;
    document.getElementById("detail-prompt").textContent = job.prompt || "(image-to-3D)";
    var state = document.getElementById("detail-state");
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    var progress = job.progress;
    document.getElementById("detail-stage").textContent = progress ? progress.title : job.kind;
    document.getElementById("detail-progress").hidden = !progress;
    var step = document.getElementById("progress-step");
    step.dataset.step = progress ? String(progress.step) : "";
    if (progress) {
      var bar = document.getElementById("progress-bar");
      bar.max = progress.steps;
      bar.value = progress.step;
      step.textContent = "step " + progress.step + " / " + progress.steps;
      document.getElementById("progress-eta").textContent =
        progress.eta_s === null ? "" : "· " + duration(progress.eta_s) + " left";
      document.getElementById("progress-loss").textContent =
        progress.loss === null ? "" : "· loss " + progress.loss.toPrecision(3);
    }
    document.getElementById("detail-error").textContent = job.error;
    showRender(job);
    showMesh(job);
    var turntable = document.getElementById("turntable");
    var clip = job.turntable || job.videos[0] || null;
    turntable.hidden = !clip;
    if (clip && turntable.getAttribute("src") !== clip) turntable.setAttribute("src", clip);
    document.getElementById("cancel").hidden = !(job.state === "queued" || job.state === "running");
    var report = document.getElementById("report-link");
    report.hidden = !job.report;
    if (job.report) report.setAttribute("href", job.report);
    var downloads = document.getElementById("downloads");
    downloads.replaceChildren();
    job.files.forEach(function (file) {
      var link = element("a", "download", file.name);
      link.setAttribute("href", file.url);
      link.setAttribute("download", file.name.replace("/", "-"));
      downloads.appendChild(link);
    });
  }

  function render() {
    if (selected === null && jobs.length) selected = jobs[0].id;
    jobs.forEach(function (job, index) {
      var node = card(job);
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
    });
    showDetail(jobs.find(function (job) { return job.id === selected; }) || null);
  }

  async function cancel() {
    var answer = await fetch("/api/jobs/" + encodeURIComponent(selected) + "/cancel", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    if (!answer.ok) document.getElementById("detail-error").textContent = (await answer.json()).error;
  }

  form.addEventListener("submit", submit);
  form.querySelectorAll("input[name=kind], input[name=image]").forEach(function (input) {
    input.addEventListener("change", showKind);
  });
  document.getElementById("cancel").addEventListener("click", cancel);
  showKind();

  var connection = document.getElementById("connection");
  var events = new EventSource("/events");
  window.studioUpdates = 0; // how many updates the stream brought (an idle page gets none)
  events.onmessage = function (event) {
    window.studioUpdates += 1;
    jobs = JSON.parse(event.data);
    connection.textContent = "";
    render();
  };
  events.onerror = function () {
    connection.textContent = "reconnecting to the studio…";
  };
})();
