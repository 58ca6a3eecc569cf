/* The idle session (accounts/sessions.py), on every signed-in page of base.html; no library.
 *
 * 1. Before the session ends for inactivity, a warning (role="alert") with "Stay signed in",
 *    which posts to the keep-alive URL. The time left comes from the server: a page just served
 *    leaves at least data-idle-seconds - data-refresh-seconds (the server's settings, not the
 *    computer's clock); before warning, the page asks the server for the exact time left (no
 *    activity itself), which also sees another tab's activity. The last answer is kept in
 *    data-seconds-left.
 * 2. The input of a form posted after the session ended, kept by the server for the same user
 *    and URL (the "kept-input" JSON), put back in that form after the login: nothing is saved
 *    until the user submits it. Passwords, hidden fields and files are never filled in.
 */
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box) return;
  var warnMs = Number(box.dataset.warnSeconds) * 1000;
  var deadline = 0;
  var timer = null;
  var before = null; // what had the focus before the warning's button took it

  function wait(ms, then) {
    window.clearTimeout(timer);
    timer = window.setTimeout(then, Math.max(0, ms));
  }

  function schedule(secondsLeft) {
    deadline = Date.now() + secondsLeft * 1000;
    wait(deadline - warnMs - Date.now(), check);
  }

  function ask(url, method) {
    var headers = {Accept: "application/json"};
    if (method === "POST") {
      var token = document.querySelector("input[name=csrfmiddlewaretoken]");
      headers["X-CSRFToken"] = token ? token.value : "";
    }
    return fetch(url, {method: method, credentials: "same-origin", headers: headers})
      .then(function (response) {
        return response.json().then(function (answer) {
          return response.ok ? answer.seconds_left : 0;
        });
      });
  }

  function say(text) {
    box.textContent = "";
    var p = document.createElement("p");
    p.textContent = text;
    box.appendChild(p);
  }

  function inWords(seconds) {
    if (seconds >= 90) return "about " + Math.round(seconds / 60) + " minutes";
    if (seconds >= 50) return "about a minute";
    return seconds + " seconds";
  }

  function check() {
    ask(box.dataset.statusUrl, "GET").then(function (left) {
      box.dataset.secondsLeft = left;
      if (left <= 0) ended();
      else if (left * 1000 > warnMs + 1000) { box.textContent = ""; schedule(left); }
      else warn(left);
    }, function () { // no answer: warn with what the page knows
      var left = Math.round((deadline - Date.now()) / 1000);
      if (left > 0) warn(left); else ended();
    });
  }

  function warn(left) {
    deadline = Date.now() + left * 1000;
    say("You will be logged out in " + inWords(left) + " because of inactivity. " +
        "What you typed on this page is not saved until you submit it.");
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = "Stay signed in";
    button.addEventListener("click", stay);
    box.appendChild(button);
    // Not while the user types in a field: the alert is read out, the button is a Tab away.
    var active = document.activeElement;
    if (!(active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName))) {
      before = active;
      button.focus();
    }
    wait(deadline - Date.now() + 1000, check); // at the end: ended, unless moved on meanwhile
  }

  function stay() {
    ask(box.dataset.keepAliveUrl, "POST").then(function (left) {
      box.dataset.secondsLeft = left;
      if (left <= 0) { ended(); return; }
      box.textContent = "";
      schedule(left);
      if (before && before !== document.body && document.contains(before)) before.focus();
      before = null;
    }, function () {
      say("The server did not answer: check the connection, then try again.");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = "Stay signed in";
      button.addEventListener("click", stay);
      box.appendChild(button);
    });
  }

  function ended() {
    window.clearTimeout(timer);
    say("Your session has ended because of inactivity. Submit the form to keep what you " +
        "typed: nothing is saved, and after you log in again it is back in the form for you " +
        "to check and submit.");
    var link = document.createElement("a");
    link.className = "button";
    link.href = box.dataset.loginUrl;
    link.textContent = "Log in again";
    box.appendChild(link);
  }

  schedule(Number(box.dataset.idleSeconds) - Number(box.dataset.refreshSeconds));

  // --- the input kept when the session ended ---------------------------------------------------
  var keptScript = document.getElementById("kept-input");
  if (!keptScript) return;
  var kept = JSON.parse(keptScript.textContent);
  var data = kept.data;

  function fillable(element) {
    if (!element.name || element.disabled) return false;
    if (element.tagName === "BUTTON" || element.tagName === "FIELDSET") return false;
    return !/^(hidden|password|file|submit|reset|image|button)$/.test(element.type);
  }

  function has(name) {
    return Object.prototype.hasOwnProperty.call(data, name);
  }

  var form = null;
  var best = 0;
  document.querySelectorAll("main form").forEach(function (candidate) {
    if ((candidate.getAttribute("method") || "").toLowerCase() !== "post") return;
    var names = {};
    Array.prototype.forEach.call(candidate.elements, function (element) {
      if (fillable(element) && has(element.name)) names[element.name] = true;
    });
    var score = Object.keys(names).length;
    if (score > best) { form = candidate; best = score; }
  });
  if (!form) return;

  var used = {}; // fields sharing a name take its values in order
  Array.prototype.forEach.call(form.elements, function (element) {
    if (!fillable(element)) return;
    var values = has(element.name) ? data[element.name] : [];
    if (element.type === "checkbox" || element.type === "radio") {
      element.checked = values.indexOf(element.value) !== -1; // not posted: not ticked
    } else if (element.tagName === "SELECT" && element.multiple) {
      Array.prototype.forEach.call(element.options, function (option) {
        option.selected = values.indexOf(option.value) !== -1;
      });
    } else if (has(element.name)) {
      var index = used[element.name] || 0;
      if (index >= values.length) return;
      element.value = values[index];
      used[element.name] = index + 1;
    } else {
      return;
    }
    element.dispatchEvent(new Event("change", {bubbles: true}));
  });

  var notice = document.createElement("div");
  notice.setAttribute("role", "status");
  var list = document.createElement("ul");
  list.className = "messages";
  var item = document.createElement("li");
  item.className = "warning";
  item.textContent = kept.message;
  list.appendChild(item);
  notice.appendChild(list);
  var main = document.querySelector("main");
  main.insertBefore(notice, main.firstChild);
})();
