/*
 * Clinic chat widget: a small, dependency-free client for Rasa's socket.io channel
 * (channels/socketio.py), on socket.io-client 4 (vendor/socket.io.min.js).
 *
 * Embed:
 *   <script src="https://YOUR-SITE/widget/widget.js" data-server="https://BOT-HOST" defer></script>
 *
 * data-server   Rasa's base URL (default: this page's host on port 5005)
 * data-title    header title (default "Spine health assistant")
 * data-open     "true" to start with the chat open
 *
 * Safety and privacy:
 * - All text, the user's and the bot's, is inserted with textContent, never as HTML.
 * - A bot message with a custom `escalation` payload shows an emergency banner
 *   (role="alert") that stays until the conversation is cleared.
 * - The conversation (session id and messages) is kept in sessionStorage: it
 *   survives reloads in this tab and is gone when the tab is closed, so a shared
 *   computer does not keep a patient's health questions. "Clear" forgets it at once.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var config = {
    server: (script && script.getAttribute("data-server")) ||
      window.location.protocol + "//" + window.location.hostname + ":5005",
    title: (script && script.getAttribute("data-title")) || "Spine health assistant",
    open: script && script.getAttribute("data-open") === "true",
  };
  var base = script ? script.src.replace(/[^/]*$/, "") : "/widget/";
  var STORE_KEY = "clinic-chat:" + config.server;
  var REPLY_TIMEOUT_MS = 30000;
  var EMERGENCY_TEXT =
    "Urgent: the symptoms you described can be an emergency. Go to the nearest " +
    "emergency department or call your local emergency number now.";

  // ---- state, kept in sessionStorage ----------------------------------------
  var state = load();
  function load() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && Array.isArray(saved.messages)) return saved;
    } catch (e) { /* storage blocked or corrupt: start fresh */ }
    return { sessionId: null, messages: [], escalation: null, greeted: false };
  }
  function save() {
    try { window.sessionStorage.setItem(STORE_KEY, JSON.stringify(state)); } catch (e) { /* ignore */ }
  }

  // ---- DOM helpers (text only, never innerHTML) ------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  var stylesheet = el("link", { rel: "stylesheet", href: base + "widget.css" });
  document.head.appendChild(stylesheet);

  var root = el("div", { class: "ccw", "data-state": "closed" });
  var launcher = el("button", {
    class: "ccw-launcher", type: "button", "aria-expanded": "false", "aria-controls": "ccw-panel",
  }, "Questions about your back? Chat with us");
  var panel = el("section", { class: "ccw-panel", id: "ccw-panel", role: "dialog", "aria-label": config.title, hidden: "" });
  var header = el("header", { class: "ccw-header" });
  var title = el("h2", { class: "ccw-title" }, config.title);
  var clearButton = el("button", { class: "ccw-clear", type: "button" }, "Clear");
  clearButton.setAttribute("aria-label", "Clear this conversation");
  var closeButton = el("button", { class: "ccw-close", type: "button", "aria-label": "Close chat" }, "×");
  header.append(title, clearButton, closeButton);
  var disclaimer = el("p", { class: "ccw-disclaimer" },
    "For education only, not a diagnosis. In an emergency, call your local emergency number.");
  var banner = el("div", { class: "ccw-banner", role: "alert", hidden: "" });
  var status = el("p", { class: "ccw-status", role: "status", "aria-live": "polite" });
  var log = el("div", { class: "ccw-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": "Conversation", tabindex: "0" });
  var typing = el("p", { class: "ccw-typing", hidden: "" });
  typing.append(el("span", { class: "ccw-visually-hidden" }, "The assistant is typing"),
    el("span", { class: "ccw-dots", "aria-hidden": "true" }, "• • •"));
  var form = el("form", { class: "ccw-form" });
  var inputId = "ccw-input";
  var label = el("label", { for: inputId, class: "ccw-visually-hidden" }, "Your message");
  var input = el("textarea", { id: inputId, class: "ccw-input", rows: "1", maxlength: "2000",
    placeholder: "Type your question…", autocomplete: "off" });
  var send = el("button", { class: "ccw-send", type: "submit" }, "Send");
  form.append(label, input, send);
  panel.append(header, disclaimer, banner, status, log, typing, form);
  root.append(launcher, panel);

  function mount() { (document.getElementById("clinic-chat") || document.body).appendChild(root); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // ---- rendering ---------------------------------------------------------------
  function renderMessage(message, animate) {
    var item = el("div", { class: "ccw-msg ccw-" + message.from });
    item.append(el("span", { class: "ccw-visually-hidden" }, message.from === "user" ? "You said: " : "Assistant: "));
    String(message.text || "").split(/\n{2,}/).forEach(function (paragraph) {
      if (paragraph.trim()) item.appendChild(el("p", {}, paragraph));
    });
    if (message.buttons && message.buttons.length) {
      var group = el("div", { class: "ccw-buttons", role: "group", "aria-label": "Suggested replies" });
      message.buttons.forEach(function (button) {
        var b = el("button", { type: "button", class: "ccw-reply" }, button.title);
        b.addEventListener("click", function () {
          sendMessage(button.payload, button.title);
          input.focus();  // the chosen button is disabled now; keep keyboard users in the chat
        });
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    if (animate) item.classList.add("ccw-new");
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function disableOldButtons() {
    var groups = log.querySelectorAll(".ccw-buttons");
    for (var i = 0; i < groups.length; i++) {
      var buttons = groups[i].querySelectorAll("button");
      for (var j = 0; j < buttons.length; j++) buttons[j].disabled = true;
    }
  }

  function showBanner() {
    if (!state.escalation) { banner.hidden = true; return; }
    banner.textContent = "";
    banner.append(el("strong", {}, "Emergency"), el("p", {}, EMERGENCY_TEXT));
    var signs = state.escalation.labels;
    if (Array.isArray(signs)) signs = signs.map(String).join("; ");
    if (signs) banner.appendChild(el("p", {}, "You mentioned: " + signs + "."));
    banner.hidden = false;
  }

  function renderAll() {
    log.textContent = "";
    state.messages.forEach(function (m) { renderMessage(m, false); });
    disableOldButtons();
    var last = log.lastElementChild;
    if (last) {
      var groups = last.querySelectorAll(".ccw-buttons button");
      for (var i = 0; i < groups.length; i++) groups[i].disabled = false;
    }
    showBanner();
  }

  function addMessage(message) {
    if (message.from === "user") disableOldButtons();
    state.messages.push(message);
    save();
    renderMessage(message, true);
  }

  // ---- typing indicator ----------------------------------------------------------
  var typingTimer = null;
  function setTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) {
      typingTimer = setTimeout(function () {
        typing.hidden = true;
        setStatus("No reply yet. Please try again in a moment, or contact the clinic.");
      }, REPLY_TIMEOUT_MS);
    }
  }
  function setStatus(text) { status.textContent = text || ""; }

  // ---- socket.io -------------------------------------------------------------------
  var socket = null;
  var ready = false;
  var pending = [];

  function connect() {
    if (socket || typeof window.io !== "function") return;
    socket = window.io(config.server, { path: "/socket.io", transports: ["websocket", "polling"],
      reconnection: true, reconnectionDelay: 500, reconnectionDelayMax: 5000 });
    socket.on("connect", function () {
      socket.emit("session_request", { session_id: state.sessionId });
    });
    socket.on("session_confirm", function (sessionId) {
      var fresh = state.sessionId !== sessionId;
      state.sessionId = sessionId;
      save();
      ready = true;
      send.disabled = false;
      setStatus("");
      if (fresh && !state.greeted) {
        state.greeted = true;
        save();
        emit("/greet");
      }
      while (pending.length) emit(pending.shift());
    });
    socket.on("bot_uttered", function (event) {
      if (!event || typeof event !== "object") return;
      setTyping(false);
      var custom = event.custom && typeof event.custom === "object" ? event.custom : null;
      if (custom && custom.escalation) {
        state.escalation = custom.escalation;
        save();
        showBanner();
      }
      if (event.text || (event.quick_replies && event.quick_replies.length)) {
        addMessage({
          from: "bot",
          text: event.text || "",
          buttons: (event.quick_replies || []).map(function (b) {
            return { title: String(b.title), payload: String(b.payload) };
          }),
          escalation: !!(custom && custom.escalation),
        });
      }
    });
    socket.on("input_error", function (event) {
      setTyping(false);
      setStatus((event && event.error) || "Something went wrong. Please try again.");
    });
    socket.on("disconnect", function () {
      ready = false;
      setStatus("Connection lost. Reconnecting…");
    });
    socket.io.on("reconnect_attempt", function () { setStatus("Reconnecting…"); });
    socket.on("connect_error", function () { setStatus("Can't reach the assistant. Retrying…"); });
  }

  function emit(text) {
    socket.emit("user_uttered", { message: text, session_id: state.sessionId });
  }

  function sendMessage(payload, shown) {
    var text = String(payload || "").trim();
    if (!text) return;
    addMessage({ from: "user", text: shown || text });
    setTyping(true);
    if (ready) emit(text); else pending.push(text);
  }

  // ---- interaction -------------------------------------------------------------------
  function open(focus) {
    root.setAttribute("data-state", "open");
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    connect();
    if (focus !== false) input.focus();
  }
  function close() {
    root.setAttribute("data-state", "closed");
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(true); else close(); });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    input.value = "";
    sendMessage(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  clearButton.addEventListener("click", function () {
    state = { sessionId: null, messages: [], escalation: null, greeted: false };
    save();
    renderAll();
    if (socket) { ready = false; socket.emit("session_request", { session_id: null }); }
  });

  renderAll();
  var vendor = el("script", { src: base + "vendor/socket.io.min.js" });
  vendor.addEventListener("load", function () {
    // A returning visitor (a reload) gets the conversation back, without moving focus.
    if (config.open || state.messages.length) open(false);
    else if (!panel.hidden) connect();  // opened before socket.io had loaded
  });
  vendor.addEventListener("error", function () { setStatus("The chat could not load. Please contact the clinic."); });
  document.head.appendChild(vendor);
  window.ClinicChat = { open: open, close: close };
})();
