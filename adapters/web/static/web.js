// warroom: live timeline on an incident page (server-sent events). The page works without this file;
// it only adds new timeline entries as they are captured, and reconnects after a server restart.
(function () {
  "use strict";
  var list = document.getElementById("timeline");
  var state = document.getElementById("live-state");
  if (!list || !window.EventSource) { return; }
  var last = list.getAttribute("data-last") || "0";
  var url = "/web/incidents/" + encodeURIComponent(list.getAttribute("data-incident")) + "/events?after=" +
    encodeURIComponent(last);
  var labels = { message: "message", status_update: "status update", note: "note", public_update: "public update" };

  function say(text) { if (state) { state.textContent = text; } }

  function add(entry) {
    if (document.getElementById("event-" + entry.id)) { return; }
    var item = document.createElement("li");
    item.id = "event-" + entry.id;
    item.setAttribute("data-id", String(entry.id));
    item.className = "event kind-" + entry.kind + (entry.pinned ? " pinned" : "") + (entry.deleted ? " deleted" : "");
    var when = document.createElement("time");
    when.setAttribute("datetime", entry.at);
    when.textContent = entry.time;
    var author = document.createElement("span");
    author.className = "author";
    author.textContent = entry.author;
    var kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = labels[entry.kind] || entry.kind.replace(/_/g, " ");
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = entry.text;
    item.append(when, " ", author, " ", kind, " ", text);
    list.appendChild(item);
  }

  var source = new EventSource(url);
  source.addEventListener("open", function () { say("Live: new messages appear here as they are captured."); });
  source.addEventListener("timeline", function (message) {
    try { add(JSON.parse(message.data)); } catch (problem) { /* one bad event must not stop the rest */ }
  });
  source.addEventListener("error", function () { say("Connection lost; reconnecting…"); });
}());
