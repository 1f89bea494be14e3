// The playground's script (docs/console.md §9): posts the form with its
// csrf_token and shows the answer as it streams in (one JSON object per
// line: t = answer text, r = reasoning, u = usage, error, done). Without
// it the form still posts and the page comes back with the whole answer.
(function () {
  "use strict";
  var form = document.getElementById("play-form");
  if (!form) { return; }
  var model = document.getElementById("play-model");
  var thinking = document.getElementById("play-thinking-label");
  var send = document.getElementById("play-send");
  var answer = document.getElementById("play-answer");
  var reasoning = document.getElementById("play-reasoning");
  var reasoningBox = document.getElementById("play-reasoning-box");
  var usage = document.getElementById("play-usage");
  var errorBox = document.getElementById("play-error");

  function showThinking() {
    var opt = model.options[model.selectedIndex];
    thinking.hidden = !(opt && opt.getAttribute("data-thinking"));
  }
  model.addEventListener("change", showThinking);
  showThinking();

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    form.querySelectorAll("p.error.field").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }
  function showError(field, msg) {
    var p = field && form.querySelector('p.error.field[data-for="' + field + '"]');
    if (p) {
      p.textContent = msg;
      p.hidden = false;
      var input = form.querySelector('[name="' + field + '"]');
      if (input) { input.setAttribute("aria-invalid", "true"); }
      return;
    }
    errorBox.textContent = msg;
    errorBox.hidden = false;
  }
  function onEvent(ev) {
    if (ev.t) { answer.textContent += ev.t; }
    if (ev.r) { reasoning.textContent += ev.r; reasoningBox.hidden = false; }
    if (ev.u) {
      usage.textContent = usage.getAttribute("data-label")
        .replace("%d", ev.u.PromptTokens).replace("%d", ev.u.CompletionTokens).replace("%d", ev.u.TotalTokens);
    }
    if (ev.error) { showError(ev.field, ev.error); }
    if (ev.done) { answer.setAttribute("data-done", ev.request_id || "1"); }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    clearErrors();
    answer.textContent = "";
    answer.removeAttribute("data-done");
    reasoning.textContent = "";
    reasoningBox.hidden = true;
    usage.textContent = "";
    var label = send.textContent;
    send.disabled = true;
    send.textContent = send.getAttribute("data-busy");
    var body = new URLSearchParams(new FormData(form));
    fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-Console-Stream": "1" }
    }).then(function (r) {
      var type = r.headers.get("Content-Type") || "";
      if (type.indexOf("application/x-ndjson") !== 0) {
        if (type.indexOf("application/json") === 0) {
          return r.json().then(function (ev) { showError(ev.field, ev.error); });
        }
        showError("", r.status + " " + r.statusText);
        return null;
      }
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      var buf = "";
      function pump() {
        return reader.read().then(function (res) {
          buf += decoder.decode(res.value || new Uint8Array(), { stream: !res.done });
          var nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            var line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line) { onEvent(JSON.parse(line)); }
          }
          if (!res.done) { return pump(); }
          return null;
        });
      }
      return pump();
    }).catch(function (err) {
      showError("", String(err));
    }).then(function () {
      send.disabled = false;
      send.textContent = label;
    });
  });
})();
