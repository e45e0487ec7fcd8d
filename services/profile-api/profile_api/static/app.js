// Entry point: sign-in, the account bar and the hash router. Views live in their own
// modules; each renders into <main> and returns nothing.

import { api, session, setUnauthorizedHandler } from "./api.js";
import { announce, field, h, replaceChildren } from "./dom.js";
import { renderDeliveries } from "./deliveries.js";
import { renderProfileForm } from "./form.js";
import { renderList } from "./list.js";
import { renderNotificationSettings } from "./settings.js";

const main = () => document.getElementById("main");

function renderAccountNav() {
  const nav = document.getElementById("account-nav");
  if (!session.key) {
    replaceChildren(nav);
    return;
  }
  replaceChildren(
    nav,
    h("a", { href: "#/profiles", class: "nav-link", text: "Profiles" }),
    h("a", { href: "#/settings/notifications", class: "nav-link", text: "Settings" }),
    h("button", {
      type: "button",
      class: "button small secondary",
      text: "Sign out",
      onclick: () => {
        session.signOut();
        announce("Signed out.");
        route();
      },
    }),
  );
}

function renderSignIn(reason = "") {
  document.title = "Sign in · Callback Profiles";
  const key = h("input", {
    type: "password",
    name: "api-key",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const keyField = field("API key", key, {
    hint: "The key of your account (api-key header). It is kept in this tab only.",
  });
  const problem = h("p", { class: "notice error", role: "alert", hidden: !reason, text: reason });
  const submit = h("button", { type: "submit", class: "button primary", text: "Sign in" });
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "signin-title",
      onsubmit: async (event) => {
        event.preventDefault();
        const value = key.value.trim();
        if (!value) return;
        submit.disabled = true;
        problem.hidden = true;
        try {
          await api.verifyKey(value);
          session.signIn(value);
          announce("Signed in.", "info", false);
          // Changing the hash routes (hashchange); routing here as well rendered the
          // list twice, and the second render took the focus from a keyboard user.
          if (window.location.hash.startsWith("#/")) route();
          else window.location.hash = "#/profiles";
        } catch (error) {
          problem.textContent =
            error.status === 401 ? "That API key was not accepted." : error.message;
          problem.hidden = false;
          key.focus();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", { id: "signin-title", text: "Sign in" }),
    problem,
    keyField.wrap,
    h("div", { class: "actions" }, submit),
  );
  replaceChildren(main(), form);
  key.focus();
}

/** Parse "#/profiles/<id>/deliveries?x=y" into path segments and query parameters. */
function parseHash() {
  const raw = window.location.hash.startsWith("#/") ? window.location.hash.slice(2) : "profiles";
  const [path, query = ""] = raw.split("?");
  return {
    parts: path.split("/").filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(query),
  };
}

/** Render the view for the current hash. Views move focus to their heading. */
export async function route() {
  renderAccountNav();
  if (!session.key) {
    renderSignIn();
    return;
  }
  const { parts, query } = parseHash();
  // Each navigation renders into a fresh container: a slower, earlier view that
  // finishes after the user has moved on writes into a detached element, never over
  // the view the user is typing in.
  const root = document.createElement("div");
  root.className = "view";
  main().replaceChildren(root);
  try {
    if (parts[0] === "settings") {
      await renderNotificationSettings(root);
    } else if (parts[0] !== "profiles" || parts.length === 1) {
      await renderList(root, query);
    } else if (parts[1] === "new") {
      await renderProfileForm(root, null);
    } else if (parts[2] === "deliveries") {
      await renderDeliveries(root, parts[1]);
    } else {
      await renderProfileForm(root, parts[1]);
    }
  } catch (error) {
    if (!session.key) return; // a 401 already sent the user to sign-in
    replaceChildren(
      root,
      h("h1", { tabindex: "-1", text: "Something went wrong" }),
      h("p", { class: "notice error", role: "alert", text: error.message }),
      h("p", {}, h("a", { href: "#/profiles", text: "Back to callback profiles" })),
    );
    root.querySelector("h1").focus();
  }
}

setUnauthorizedHandler(() => {
  session.signOut();
  renderAccountNav();
  renderSignIn("Your API key is no longer accepted. Please sign in again.");
});

window.addEventListener("hashchange", () => {
  // The skip link's "#main" is an in-page jump, not a route.
  if (window.location.hash.startsWith("#/")) route();
});

document.getElementById("skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main().focus();
});

route();
