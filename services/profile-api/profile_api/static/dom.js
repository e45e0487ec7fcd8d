// Building the page safely: every piece of data becomes a text node or an attribute
// value, never HTML. No module of this page assigns innerHTML.

let uid = 0;

/** A fresh id for label/input and aria-describedby pairs. */
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * Create an element. `attrs` keys: `class`, `text`, `on<event>` (a listener),
 * `dataset` (object), boolean attributes as true/false, others as strings.
 * Children may be nodes, strings (as text), arrays, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** Replace every child of `el`. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control: returns {wrap, input, error}; the error slot sits beside it. */
export function field(labelText, input, { hint = null, field: path = null } = {}) {
  const id = input.id || nextId("in");
  input.id = id;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  if (path) input.dataset.field = path;
  const wrap = h(
    "div",
    { class: "field" },
    h("label", { for: id, text: labelText }),
    hint ? h("p", { class: "hint", id: hintId, text: hint }) : null,
    input,
    error,
  );
  return { wrap, input, error };
}

/** Show `message` in the error slot tied to `input` (via aria-describedby). */
export function setFieldError(input, message) {
  input.setAttribute("aria-invalid", "true");
  const slotId = (input.getAttribute("aria-describedby") || "")
    .split(" ")
    .find((id) => id.endsWith("-error"));
  const slot = slotId ? document.getElementById(slotId) : null;
  if (slot) {
    const text = slot.hidden ? message : `${slot.textContent} ${message}`;
    slot.textContent = text;
    slot.hidden = false;
  }
}

/** Remove every field error inside `root`. */
export function clearFieldErrors(root) {
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of root.querySelectorAll(".field-error")) {
    el.textContent = "";
    el.hidden = true;
  }
}

let toastTimer = 0;

/**
 * Tell the user something through a live region. `visible` shows it as a toast for a
 * few seconds (actions: copied, saved, failed); otherwise only screen readers hear it
 * (the text is already on the page, e.g. a result count).
 */
export function announce(message, kind = "info", visible = true) {
  const region = document.getElementById(visible ? "status" : "sr-status");
  if (!region) return;
  region.dataset.kind = kind;
  // Re-set the text so an identical message is announced again.
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = message;
  }, 30);
  if (visible) {
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(() => {
      region.textContent = "";
    }, 5000);
  }
}

/** Copy text to the clipboard; falls back to a hidden textarea where the API is missing. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "visually-hidden", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** A "Copy" button that copies `text` and says so. */
export function copyButton(text, what) {
  return h("button", {
    type: "button",
    class: "button small secondary",
    "aria-label": `Copy ${what}`,
    text: "Copy",
    onclick: async () => {
      const ok = await copyText(text);
      announce(ok ? `Copied ${what}.` : `Could not copy ${what}.`, ok ? "info" : "error");
    },
  });
}

/** Dates the way people read them, in the browser's locale and time zone. */
export function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The host of a URL, or the URL itself when it does not parse (templates in the host). */
export function urlHost(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

let flash = null;

/** Something for the next view to show once (e.g. the signing secret after create). */
export function setFlash(value) {
  flash = value;
}

export function takeFlash() {
  const value = flash;
  flash = null;
  return value;
}
