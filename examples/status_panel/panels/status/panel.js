// Runs in a sandboxed frame: no cookies, no storage, no network. The host answers requests
// ({id, method, params}) that this plugin's permissions allow and replies with {id, result | error}.
(function () {
  "use strict";
  var next = 1;
  var waiting = {};

  function ask(method, params) {
    return new Promise(function (resolve, reject) {
      var id = next++;
      waiting[id] = { resolve: resolve, reject: reject };
      window.parent.postMessage({ id: id, method: method, params: params || {} }, "*");
    });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) return;
    var data = event.data || {};
    if (data.bridge !== "taylordash") return;
    if (data.changed) { load(); return; }
    var pending = waiting[data.id];
    if (!pending) return;
    delete waiting[data.id];
    if (data.error) pending.reject(new Error(data.error)); else pending.resolve(data.result);
  });

  function load() {
    ask("projects.list").then(function (projects) {
      var done = projects.filter(function (p) { return p.progress >= 100; }).length;
      document.getElementById("summary").textContent = projects.length + " projects, " + done + " complete";
      var list = document.getElementById("projects");
      list.textContent = "";
      projects.forEach(function (p) {
        var li = document.createElement("li");
        var name = document.createElement("span");
        name.textContent = p.name;
        var value = document.createElement("span");
        var bar = document.createElement("span");
        bar.className = "bar";
        bar.style.width = Math.max(2, p.progress) + "px";
        value.appendChild(bar);
        value.appendChild(document.createTextNode(" " + p.progress + "%"));
        li.appendChild(name);
        li.appendChild(value);
        list.appendChild(li);
      });
    }).catch(function (error) {
      document.getElementById("summary").textContent = "Unavailable: " + error.message;
    });
  }

  load();
})();
