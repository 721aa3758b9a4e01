// TaylorDash dashboard behaviour: API writes with the session's CSRF token, live updates from the
// event stream, the kanban board, time travel, and the postMessage bridge of third-party panels.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // -- API calls ---------------------------------------------------------------------------------
  function api(method, url, body, isForm) {
    var headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined && body !== null) {
      if (isForm) { init.body = body; } else { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    }
    return fetch(url, init).then(function (response) {
      var type = response.headers.get("content-type") || "";
      var parsed = type.indexOf("json") >= 0 ? response.json() : Promise.resolve(null);
      return parsed.then(function (data) {
        if (!response.ok) {
          var message = (data && (data.detail || data.title)) || ("HTTP " + response.status);
          if (data && data.errors && data.errors.length) message += ": " + data.errors.map(function (e) { return e.loc.join(".") + " " + e.msg; }).join("; ");
          var error = new Error(message); error.status = response.status; throw error;
        }
        return data;
      });
    });
  }
  window.td = { api: api };

  function toast(message, bad) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message; box.className = bad ? "show bad" : "show";
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.className = ""; }, 4000);
  }

  function then(spec, data) {
    if (!spec || spec === "reload") { refreshAll(); return; }
    if (spec.indexOf("goto:") === 0) {
      var target = spec.slice(5).replace(/\{(\w+)\}/g, function (_, key) { return encodeURIComponent(data && data[key] || ""); });
      window.location.assign(target);
    }
  }

  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.hasAttribute("data-path-only") || el.type === "submit") return;
      var kind = el.getAttribute("data-type");
      if (el.type === "checkbox") { body[el.name] = el.checked; return; }
      if (el.value === "") return;
      if (el.type === "number" || kind === "integer" || kind === "number") body[el.name] = Number(el.value);
      else if (kind === "json") body[el.name] = JSON.parse(el.value);
      else body[el.name] = el.value;
    });
    return body;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var error = form.querySelector(".form-error");
    if (form.hasAttribute("data-api-form")) {
      event.preventDefault();
      var url = form.getAttribute("data-action").replace(/\{(\w+)\}/g, function (_, name) { return encodeURIComponent(form.elements[name].value); });
      var body;
      try { body = formBody(form); } catch (e) { if (error) error.textContent = "Invalid JSON: " + e.message; return; }
      if (form.getAttribute("data-then") === "show" && "arguments" in body) body = { arguments: body.arguments };
      api(form.getAttribute("data-method") || "POST", url, body).then(function (data) {
        if (error) error.textContent = "";
        var spec = form.getAttribute("data-then");
        if (spec === "show") { form.querySelector(".result").textContent = JSON.stringify(data, null, 2); return; }
        if (spec === "show-token") { var box = form.querySelector(".token-secret"); box.hidden = false; box.querySelector("code").textContent = data.token; return; }
        form.reset(); toast("Saved"); then(spec, data);
      }).catch(function (e) { if (error) error.textContent = e.message; toast(e.message, true); });
    } else if (form.hasAttribute("data-upload-form")) {
      event.preventDefault();
      var data = new FormData(form);
      api("POST", form.getAttribute("data-action"), data, true).then(function (reply) {
        if (error) error.textContent = ""; toast("Uploaded");
        var spec = form.getAttribute("data-then");
        if (spec) then(spec, reply); else reopenTask();
      }).catch(function (e) { if (error) error.textContent = e.message; toast(e.message, true); });
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-api-click]");
    if (button) {
      event.preventDefault();
      if (button.hasAttribute("data-confirm") && !window.confirm(button.getAttribute("data-confirm"))) return;
      var body = button.hasAttribute("data-body") ? JSON.parse(button.getAttribute("data-body")) : undefined;
      button.disabled = true;
      api(button.getAttribute("data-method") || "POST", button.getAttribute("data-url"), body).then(function (data) {
        toast("Done"); then(button.getAttribute("data-then"), data);
      }).catch(function (e) { toast(e.message, true); }).then(function () { button.disabled = false; });
      return;
    }
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var root = document.documentElement;
      var dark = root.getAttribute("data-theme") === "dark" ||
        (root.getAttribute("data-theme") === "auto" && window.matchMedia("(prefers-color-scheme: dark)").matches);
      var next = dark ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { window.localStorage.setItem("td-theme", next); } catch (e) { /* private mode */ }
      return;
    }
    var open = event.target.closest("[data-task-open]");
    if (open && document.getElementById("task-dialog")) { event.preventDefault(); openTask(open.getAttribute("href")); }
  });

  // -- task detail dialog ------------------------------------------------------------------------
  var openTaskUrl = null;
  function openTask(url) {
    openTaskUrl = url;
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } }).then(function (r) { return r.text(); }).then(function (html) {
      var dialog = document.getElementById("task-dialog");
      document.getElementById("task-dialog-body").innerHTML = html;
      if (!dialog.open) dialog.showModal();
    });
  }
  function reopenTask() { if (openTaskUrl) openTask(openTaskUrl); }

  // -- kanban: drag and drop, and a status select for keyboards ----------------------------------
  function setStatus(taskId, status) {
    return api("PATCH", "/api/v1/tasks/" + taskId, { status: status }).then(function () { toast("Task moved to " + status.replace("_", " ")); refreshAll(); })
      .catch(function (e) { toast(e.message, true); refreshAll(); });
  }
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".task-card[draggable=true]");
    if (!card) return;
    event.dataTransfer.setData("text/plain", card.getAttribute("data-task"));
    event.dataTransfer.effectAllowed = "move";
    card.classList.add("dragging");
  });
  document.addEventListener("dragend", function (event) {
    var card = event.target.closest && event.target.closest(".task-card");
    if (card) card.classList.remove("dragging");
  });
  document.addEventListener("dragover", function (event) {
    var column = event.target.closest && event.target.closest(".kanban .column");
    if (column && document.body.getAttribute("data-role") === "admin") { event.preventDefault(); column.classList.add("over"); }
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest(".kanban .column");
    if (column) column.classList.remove("over");
  });
  document.addEventListener("drop", function (event) {
    var column = event.target.closest && event.target.closest(".kanban .column");
    if (!column) return;
    event.preventDefault();
    column.classList.remove("over");
    var taskId = event.dataTransfer.getData("text/plain");
    var card = document.querySelector('.task-card[data-task="' + taskId + '"]');
    if (card) column.querySelector("ul").appendChild(card);
    if (taskId) setStatus(taskId, column.getAttribute("data-status"));
  });
  document.addEventListener("change", function (event) {
    var select = event.target.closest("[data-task-status]");
    if (select) setStatus(select.getAttribute("data-task-status"), select.value);
  });

  // -- refreshing regions: re-read the page and swap the regions that changed ----------------------
  // Regions asked for within one short window are re-read together, with one request for the page.
  // A region where the user is typing (focus in a text field, or text not yet sent) waits: a live
  // update never throws away what someone is entering.
  var pending = null;
  var due = [];
  var TEXT = /^(text|search|number|email|password|date|url|tel|)$/;
  function busy(region) {
    var active = document.activeElement;
    if (active && region.contains(active) && (active.tagName === "TEXTAREA" || (active.tagName === "INPUT" && TEXT.test(active.type)))) return true;
    return Array.prototype.some.call(region.querySelectorAll("input, textarea"), function (el) {
      return (el.tagName === "TEXTAREA" || TEXT.test(el.type)) && el.value !== el.defaultValue;
    });
  }
  function refreshAll(filter) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh-types][id]"), function (region) {
      if ((!filter || filter(region)) && due.indexOf(region.id) < 0) due.push(region.id);
    });
    if (!due.length) return;
    clearTimeout(pending);
    pending = setTimeout(function () {
      var ids = due.filter(function (id) { var r = document.getElementById(id); return r && !busy(r); });
      due = due.filter(function (id) { return ids.indexOf(id) < 0; });
      if (due.length) setTimeout(function () { refreshAll(function () { return false; }); }, 1000);
      if (!ids.length) return;
      fetch(window.location.pathname + window.location.search, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var region = document.getElementById(id);
          var fresh = doc.getElementById(id);
          if (region && fresh && fresh.innerHTML !== region.innerHTML) {
            var open = Array.prototype.map.call(region.querySelectorAll("details[open] > summary"), function (s) { return s.textContent; });
            var node = document.importNode(fresh, true);
            Array.prototype.forEach.call(node.querySelectorAll("details > summary"), function (s) { if (open.indexOf(s.textContent) >= 0) s.parentNode.open = true; });
            region.replaceWith(node);
            if (window.htmx) window.htmx.process(node);
          }
        });
      });
    }, 120);
  }

  function eventProject(e) {
    var p = e.payload || {};
    return p.project_id || (p.after && p.after.project_id) || (p.before && p.before.project_id) || null;
  }

  function onEvent(e) {
    document.dispatchEvent(new CustomEvent("td:event", { detail: e }));
    refreshAll(function (region) {
      var types = region.getAttribute("data-refresh-types").split(/\s+/).filter(Boolean);
      if (!types.some(function (t) { return e.type.indexOf(t) === 0; })) return false;
      var project = region.getAttribute("data-refresh-project");
      return !project || project === eventProject(e);
    });
    var feeds = document.querySelectorAll("[data-live-feed]");
    Array.prototype.forEach.call(feeds, function (feed) {
      var li = document.createElement("li"); li.className = "event fresh";
      var time = document.createElement("time"); time.textContent = (e.occurred_at || "").slice(11, 19);
      var code = document.createElement("code"); code.textContent = e.type;
      var subject = document.createElement("span"); subject.className = "muted"; subject.textContent = " " + (e.subject_id || "");
      li.appendChild(time); li.appendChild(document.createTextNode(" ")); li.appendChild(code); li.appendChild(subject);
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 30) feed.removeChild(feed.lastChild);
    });
    var rows = document.querySelector("[data-tail]");
    var tail = document.getElementById("tail");
    if (rows && (!tail || tail.checked) && matchesFilters(rows, e)) {
      var template = document.getElementById("event-row-template");
      var row = template.content.firstElementChild.cloneNode(true);
      row.querySelector("time").textContent = (e.occurred_at || "").slice(0, 19).replace("T", " ");
      row.querySelector('[data-f="type"]').textContent = e.type;
      row.querySelector('[data-f="topic"]').textContent = e.topic;
      row.querySelector('[data-f="subject_id"]').textContent = e.subject_id || "";
      row.querySelector('[data-f="actor"]').textContent = (e.actor && e.actor.id) || "";
      row.querySelector('[data-f="payload"]').textContent = JSON.stringify(e.payload, null, 1);
      rows.insertBefore(row, rows.firstChild);
    }
    notifyPanels(e);
  }

  function topicMatches(filter, topic) {
    var f = filter.split("/"), t = topic.split("/");
    for (var i = 0; i < f.length; i++) {
      if (f[i] === "#") return true;
      if (i >= t.length) return false;
      if (f[i] !== "+" && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  }
  function matchesFilters(rows, e) {
    var topic = rows.getAttribute("data-topic"), type = rows.getAttribute("data-type"), subject = rows.getAttribute("data-subject");
    return (!topic || topicMatches(topic, e.topic)) && (!type || type === e.type) && (!subject || subject === e.subject_id);
  }

  var stream = null;
  function connect() {
    if (document.body.getAttribute("data-live") !== "on" || !window.EventSource) return;
    var status = document.getElementById("live-status");
    stream = new EventSource("/api/v1/events/stream");
    stream.onopen = function () { if (status) { status.textContent = "live"; status.classList.add("on"); } document.body.setAttribute("data-stream", "open"); };
    stream.onerror = function () { if (status) { status.textContent = "reconnecting"; status.classList.remove("on"); } document.body.setAttribute("data-stream", "error"); };
    stream.onmessage = function (message) {
      try { onEvent(JSON.parse(message.data)); } catch (err) { /* a malformed frame is skipped */ }
    };
  }

  // -- time travel ----------------------------------------------------------------------------------
  function setupTravel() {
    var slider = document.getElementById("travel");
    if (!slider) return;
    var created = Date.parse(slider.getAttribute("data-created"));
    var out = document.getElementById("travel-out");
    var project = document.getElementById("project").getAttribute("data-project-id");
    slider.min = 0; slider.max = 100; slider.value = 100;
    var timer = null;
    slider.addEventListener("input", function () {
      var at = new Date(created + (Date.now() - created) * slider.value / 100);
      if (Number(slider.value) >= 100) { out.textContent = "now"; return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        api("GET", "/api/v1/projects/" + project + "?as_of=" + encodeURIComponent(at.toISOString())).then(function (p) {
          out.textContent = at.toISOString().slice(0, 19).replace("T", " ") + " UTC: " + p.status + ", " + p.progress + "% done, " + p.component_count + " components";
        }).catch(function (e) { out.textContent = at.toISOString().slice(0, 19).replace("T", " ") + " UTC: " + e.message; });
      }, 150);
    });
  }

  // -- third-party panels: the postMessage bridge -----------------------------------------------------
  // A panel's frame is sandboxed without allow-same-origin, so its origin is opaque ("null"): the only
  // way it reaches the host is this bridge. A request is answered only when the frame that sent it is
  // one of the panels on this page and the method is one its plugin's permissions allow.
  var BRIDGE = {
    "projects.list": function () { return api("GET", "/api/v1/projects?limit=100&sort=-updated_at").then(function (page) { return page.items.map(function (p) { return { id: p.id, name: p.name, status: p.status, progress: p.progress }; }); }); },
    "project.get": function (params) { return api("GET", "/api/v1/projects/" + encodeURIComponent(String(params && params.id || ""))); },
    "events.recent": function () { return api("GET", "/api/v1/events?limit=20").then(function (page) { return page.items; }); }
  };
  function panelFrames() { return Array.prototype.slice.call(document.querySelectorAll("iframe[data-plugin]")); }
  window.addEventListener("message", function (event) {
    var frame = panelFrames().filter(function (f) { return f.contentWindow === event.source; })[0];
    if (!frame) return;
    var request = event.data || {};
    var reply = function (body) { body.id = request.id; body.bridge = "taylordash"; event.source.postMessage(body, "*"); };
    var allowed = (frame.getAttribute("data-bridge") || "").split(" ");
    if (typeof request.method !== "string" || allowed.indexOf(request.method) < 0 || !BRIDGE[request.method]) {
      reply({ error: "not permitted: " + String(request.method) });
      return;
    }
    BRIDGE[request.method](request.params).then(function (result) { reply({ result: result }); }, function (e) { reply({ error: e.message }); });
  });
  function notifyPanels(e) {
    var family = e.type.split(".")[0];
    panelFrames().forEach(function (frame) {
      var allowed = (frame.getAttribute("data-bridge") || "").split(" ");
      if (!frame.contentWindow) return;
      if (allowed.indexOf("events.recent") >= 0) {
        frame.contentWindow.postMessage({ bridge: "taylordash", event: { type: e.type, subject_id: e.subject_id } }, "*");
      } else if (allowed.indexOf("projects.list") >= 0 && ["projects", "components", "tasks"].indexOf(family) >= 0) {
        frame.contentWindow.postMessage({ bridge: "taylordash", changed: family }, "*");
      }
    });
  }

  document.addEventListener("htmx:configRequest", function (event) { event.detail.headers["X-CSRF-Token"] = csrf; });
  document.addEventListener("DOMContentLoaded", function () { connect(); setupTravel(); });
})();
