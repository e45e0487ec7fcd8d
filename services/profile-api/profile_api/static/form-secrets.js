// The two sections of the form that hold secrets, encryption (its key) and
// authentication (passwords, tokens, client secrets): a saved secret is shown as ****
// and sent back as **** to keep it (contract §3).

import { field, h, replaceChildren } from "./dom.js";
import { toggleSwitch } from "./form-parts.js";

const ALGORITHMS = [
  "aes-128-gcm",
  "aes-192-gcm",
  "aes-256-gcm",
  "aes-128-cfb",
  "aes-192-cfb",
  "aes-256-cfb",
];

const MASK = "****";

const AUTH_TYPES = [
  ["none", "None"],
  ["basic", "Basic (username and password)"],
  ["bearer", "Bearer token"],
  ["oauth2_client_credentials", "OAuth 2.0 client credentials"],
];

const AUTH_FIELDS = {
  basic: [
    ["username", "Username", "text"],
    ["password", "Password", "password"],
  ],
  bearer: [["token", "Token", "password"]],
  oauth2_client_credentials: [
    ["token_url", "Token URL", "url"],
    ["client_id", "Client ID", "text"],
    ["client_secret", "Client secret", "password"],
    ["scope", "Scope (optional)", "text"],
  ],
};

const SECRET_HINT = "Stored encrypted. Leave **** to keep the saved value.";

function randomKey(bytes) {
  const raw = new Uint8Array(bytes);
  window.crypto.getRandomValues(raw);
  return window.btoa(String.fromCharCode(...raw));
}

/** Encryption toggle with algorithm, scope and key (contract §6). */
export function encryptionSection(encryption) {
  const details = h("div", { class: "subsection" });
  const toggle = toggleSwitch(
    "Enable encryption",
    encryption.enabled,
    (on) => {
      details.hidden = !on;
    },
    "encryption.enabled",
  );
  const algorithm = field(
    "Algorithm",
    h(
      "select",
      {},
      ALGORITHMS.map((a) =>
        h("option", { value: a, text: a.toUpperCase(), selected: a === encryption.algorithm }),
      ),
    ),
    { field: "encryption.algorithm" },
  );
  const scope = field(
    "What is encrypted",
    h(
      "select",
      {},
      h("option", {
        value: "values",
        text: "Each variable value (as the CPaaS does)",
        selected: encryption.scope !== "body",
      }),
      h("option", {
        value: "body",
        text: "The whole body, as a JSON envelope",
        selected: encryption.scope === "body",
      }),
    ),
    { field: "encryption.scope" },
  );
  const key = field(
    "Key (base64)",
    h("input", {
      type: "text",
      value: encryption.key || "",
      spellcheck: "false",
      autocomplete: "off",
      class: "code",
    }),
    {
      field: "encryption.key",
      hint: `Base64 of 16, 24 or 32 bytes, matching the algorithm. ${encryption.key === MASK ? SECRET_HINT : ""}`,
    },
  );
  const generate = h("button", {
    type: "button",
    class: "button small secondary",
    text: "Generate key",
    onclick: () => {
      const bits = Number.parseInt(algorithm.input.value.split("-")[1], 10);
      key.input.value = randomKey(bits / 8);
      key.input.dispatchEvent(new Event("input", { bubbles: true }));
      key.input.focus();
    },
  });
  replaceChildren(details, algorithm.wrap, scope.wrap, key.wrap, generate);
  details.hidden = !encryption.enabled;
  const el = h(
    "fieldset",
    { class: "section" },
    h("legend", { text: "Encryption" }),
    toggle.el,
    details,
  );
  return {
    el,
    collect: () => ({
      enabled: toggle.input.checked,
      algorithm: algorithm.input.value,
      scope: scope.input.value,
      key: key.input.value.trim() || null,
    }),
  };
}

/** Authentication by type; only the chosen type's fields are shown and sent. */
export function authenticationSection(authentication) {
  const type = field(
    "Authentication type",
    h(
      "select",
      {},
      AUTH_TYPES.map(([v, t]) =>
        h("option", { value: v, text: t, selected: v === (authentication.type || "none") }),
      ),
    ),
    {
      field: "authentication.type",
    },
  );
  const inputs = {};
  const groups = {};
  for (const [kind, fields] of Object.entries(AUTH_FIELDS)) {
    groups[kind] = h(
      "div",
      { class: "subsection" },
      fields.map(([name, label, inputType]) => {
        const value = authentication.type === kind ? authentication[name] || "" : "";
        const isSecret = inputType === "password";
        const made = field(
          label,
          h("input", {
            type: inputType,
            value,
            spellcheck: "false",
            autocomplete: "off",
            class: isSecret ? "secret" : null,
          }),
          {
            field: `authentication.${name}`,
            hint: isSecret && value === MASK ? SECRET_HINT : null,
          },
        );
        inputs[`${kind}.${name}`] = made.input;
        return made.wrap;
      }),
    );
  }
  const show = () => {
    for (const [kind, group] of Object.entries(groups)) {
      group.hidden = type.input.value !== kind;
      // Only the visible group's inputs carry the API field names, so errors land there.
      for (const input of group.querySelectorAll("input")) {
        const name = input.dataset.field || input.dataset.hiddenField;
        if (group.hidden) {
          input.dataset.hiddenField = name;
          delete input.dataset.field;
        } else {
          input.dataset.field = name;
        }
      }
    }
  };
  type.input.addEventListener("change", show);
  show();
  const el = h(
    "fieldset",
    { class: "section" },
    h("legend", { text: "Authentication" }),
    type.wrap,
    Object.values(groups),
  );
  return {
    el,
    collect() {
      const kind = type.input.value;
      const out = { type: kind };
      for (const [name] of AUTH_FIELDS[kind] || []) {
        const value = inputs[`${kind}.${name}`].value.trim();
        if (value) out[name] = value;
      }
      return out;
    },
  };
}
