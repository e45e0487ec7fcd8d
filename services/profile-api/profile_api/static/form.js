// The Add / Edit page of a callback profile (contract §3 and §3a): every field of the
// profile, the variable picker, Test, Save (with the API's field errors beside their
// inputs) and Delete. Each section of the form is built by its own function below;
// `renderProfileForm` assembles them and keeps the channel-dependent ones in step.

import { api } from "./api.js";
import { announce, field, h, replaceChildren, setFlash, takeFlash } from "./dom.js";
import { errorReporter } from "./form-errors.js";
import { filtersEditor } from "./form-filters.js";
import {
  checkboxGroup,
  rowsEditor,
  select,
  testResult,
  toggleSwitch,
  variablePicker,
} from "./form-parts.js";
import { authenticationSection, encryptionSection } from "./form-secrets.js";
import { profileHealth } from "./health.js";
import { CHANNEL_TITLES } from "./list.js";
import { BODY_TYPES, channelVariables, collectProfile, NEW_PROFILE } from "./profile-data.js";
import { deleteBox, flashNotice, profileFacts } from "./profile-extras.js";

/** One section of the form: a fieldset with its legend. */
function section(legend, ...children) {
  return h("fieldset", { class: "section" }, h("legend", { text: legend }), children);
}

/** The catalog's entry for channel `name`; an unknown channel offers GET and POST only. */
function channelSpec(catalog, name) {
  return (
    catalog.find((c) => c.channel === name) || {
      channel: name,
      methods: ["GET", "POST"],
      events: [],
    }
  );
}

/**
 * Title, channel (fixed once saved), events, method and URL.
 * `showChannel(spec, chosen, onEventsChange)` offers that channel's events (with `chosen`
 * ticked; `onEventsChange` runs when the user ticks one) and its methods.
 */
function profileSection(profile, isNew) {
  const title = field(
    "Title",
    h("input", { type: "text", value: profile.title, maxlength: 200, required: true }),
    {
      field: "title",
      hint: "You can search callback profiles by title.",
    },
  );
  const channel = field(
    "Select channel API",
    select(
      Object.entries(CHANNEL_TITLES).map(([v, t]) => [
        v,
        v === "default" ? "Default — no channel selected" : t,
      ]),
      profile.channel,
    ),
    { field: "channel", hint: isNew ? "" : "The channel of a saved profile cannot change." },
  );
  channel.input.disabled = !isNew;
  const eventsSlot = h("div", { class: "events-slot" });
  const method = field("HTTP method", h("select", {}), { field: "method" });
  const url = field(
    "URL endpoint",
    h("input", { type: "url", value: profile.url, spellcheck: "false", required: true }),
    {
      field: "url",
      hint: "Absolute http(s) URL; variables may stand in the path and query.",
    },
  );
  url.input.dataset.template = "URL";
  let events = checkboxGroup("Events", "events", [], []);

  function showChannel(spec, chosen, onEventsChange) {
    const isDefault = spec.channel === "default";
    const selected = isDefault ? [] : chosen.filter((e) => spec.events.some((x) => x.name === e));
    events = checkboxGroup(
      "Events for the selected channel",
      "events",
      spec.events.map((e) => [e.name, e.name, e.description || ""]),
      selected,
      {
        disabled: isDefault,
        note: isDefault ? "Default receives every event with the envelope variables only." : "",
      },
    );
    events.el.addEventListener("change", () => onEventsChange());
    replaceChildren(eventsSlot, events.el);
    const current = method.input.value || profile.method;
    replaceChildren(
      method.input,
      spec.methods.map((m) => h("option", { value: m, text: m, selected: m === current })),
    );
    if (!spec.methods.includes(method.input.value)) method.input.value = spec.methods[0];
  }

  const el = section("Profile", title.wrap, channel.wrap, eventsSlot, method.wrap, url.wrap);
  return { el, title, channel, method, url, events: () => events.values(), showChannel };
}

/** The headers, sent with every callback. */
function headersSection(profile) {
  const headers = rowsEditor({ path: "headers", noun: "Header", rows: profile.headers });
  const el = section(
    "Headers",
    h("p", { class: "hint", text: "Sent with every callback, e.g. an API key or Content-Type." }),
    headers.el,
  );
  return { el, headers };
}

/** The query parameters added to the URL. */
function queryParamsSection(profile) {
  const queryParams = rowsEditor({
    path: "query_params",
    noun: "Query parameter",
    rows: profile.query_params,
  });
  const el = section("Query parameters", queryParams.el);
  return { el, queryParams };
}

/**
 * Body type and body, or form-field rows for a form body. `showFor(method)` shows the
 * section for POST and PUT only and allows only JSON for PUT.
 */
function bodySection(profile) {
  const bodyType = field("Body type", select(BODY_TYPES, profile.body_type || "json"), {
    field: "body_type",
  });
  const body = field("Body", h("textarea", { rows: 8, spellcheck: "false", class: "code" }), {
    field: "body",
    hint: "Use {{variable}} for dynamic values; the variable picker inserts them at the cursor.",
  });
  body.input.value = profile.body || "";
  body.input.dataset.template = "Body";
  const formFields = rowsEditor({
    path: "form_fields",
    noun: "Form field",
    rows: profile.form_fields || {},
  });
  const formFieldsBox = h(
    "div",
    { class: "form-fields" },
    h("h3", { text: "Form fields" }),
    formFields.el,
  );
  const el = section("Body", bodyType.wrap, body.wrap, formFieldsBox);

  function showFor(method) {
    el.hidden = !(method === "POST" || method === "PUT");
    for (const option of bodyType.input.options)
      option.disabled = method === "PUT" && option.value !== "json";
    if (method === "PUT") bodyType.input.value = "json";
    const isForm = bodyType.input.value === "form";
    body.wrap.hidden = isForm;
    formFieldsBox.hidden = !isForm;
  }

  return { el, bodyType, body, formFields, showFor };
}

/**
 * The switch and the variables an event must carry to be delivered.
 * `setVariables(variables, keep)` offers `variables` with `keep` ticked (null: the ones
 * ticked now).
 */
function requiredOptionsSection(profile) {
  let required = checkboxGroup("Required variables", "required_options.variables", [], []);
  const slot = h("div", {});
  const requiredSwitch = toggleSwitch(
    "Enable callback required options",
    profile.required_options.enabled,
    (on) => {
      required.el.hidden = !on;
    },
    "required_options.enabled",
  );

  function setVariables(variables, keep) {
    const ticked = keep ?? required.values();
    required = checkboxGroup(
      "Variables that must be present and non-empty",
      "required_options.variables",
      variables.map((v) => [v.name, v.name, ""]),
      ticked,
    );
    required.el.hidden = !requiredSwitch.input.checked;
    replaceChildren(slot, required.el);
  }

  const el = section(
    "Callback required options",
    h("p", {
      class: "hint",
      text: "Only deliver events that carry every chosen variable (useful for chatbot endpoints).",
    }),
    requiredSwitch.el,
    slot,
  );
  return {
    el,
    setVariables,
    values: () => ({ enabled: requiredSwitch.input.checked, variables: required.values() }),
  };
}

/** The filters every delivered event must pass. */
function filtersSection(profile) {
  const filterRows = filtersEditor(profile.filters || []);
  const el = section(
    "Filters",
    h("p", {
      class: "hint",
      text: "Only deliver events for which every filter holds, e.g. status is one of failed, undelivered. Values are comma-separated.",
    }),
    filterRows.el,
  );
  return { el, filterRows };
}

/** Retry policy, maximum age, signature scheme and the enabled switch. */
function deliverySection(profile) {
  const retryOn = field(
    "Retry on",
    select(
      [
        ["all_failures", "All failures (any non-2xx, timeout, connection error)"],
        ["transient_only", "Transient failures only (timeouts, connection errors, 408, 429, 5xx)"],
      ],
      profile.retry_on,
    ),
    { field: "retry_on" },
  );
  const maxAge = field(
    "Maximum age",
    h("input", {
      type: "text",
      value: profile.max_age || "",
      placeholder: "e.g. 2h",
      spellcheck: "false",
    }),
    {
      field: "max_age",
      hint: "No attempt starts after the event time plus this (90s, 30m, 2h, 1d). Empty: no limit.",
    },
  );
  const signingScheme = field(
    "Signature scheme",
    select(
      [
        ["v1", "v1: HMAC-SHA256 with the signing secret"],
        ["v1a", "v1a: ed25519, verified with the profile's public key"],
        ["both", "Both v1 and v1a"],
      ],
      (profile.signing || { scheme: "v1" }).scheme,
    ),
    {
      field: "signing.scheme",
      hint: "Standard Webhooks signatures in webhook-signature; the v1a public key is at GET /v1/callback-profiles/{id}/signing-key.",
    },
  );
  const enabled = toggleSwitch("Profile enabled", profile.enabled !== false, () => {}, "enabled");
  const el = section("Delivery", retryOn.wrap, maxAge.wrap, signingScheme.wrap, enabled.el);
  return { el, retryOn, maxAge, signingScheme, enabled };
}

/**
 * The Test section: the event to simulate and where the result is shown.
 * `setEvents(names)` offers those events (none: the envelope variables only).
 */
function testSection() {
  const testEvent = field("Event to simulate", h("select", {}));
  const output = h("div", { class: "test-output", "aria-live": "polite" });

  function setEvents(names) {
    replaceChildren(
      testEvent.input,
      names.length
        ? names.map((n) => h("option", { value: n, text: n }))
        : h("option", { value: "", text: "Any (envelope variables only)" }),
    );
  }

  const el = h(
    "section",
    { class: "section test-section", "aria-labelledby": "test-title" },
    h("h2", { id: "test-title", text: "Test" }),
    h("p", {
      class: "hint",
      text: "Sends one callback built exactly as the dispatcher would, with sample values.",
    }),
    testEvent.wrap,
    output,
  );
  return { el, output, setEvents, event: () => testEvent.input.value };
}

/**
 * Save on submit: create (then go to the new profile's page) or update (then show the
 * page again); the API's errors go beside their fields.
 */
function saveOnSubmit(form, { root, stored, collect, errors, saveButton }) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saveButton.disabled = true;
    errors.clear();
    try {
      if (!stored) {
        const created = await api.createProfile(collect());
        setFlash({ secret: created.signing_secret, message: "Callback profile created." });
        window.location.hash = `#/profiles/${encodeURIComponent(created.id)}`;
      } else {
        await api.updateProfile(stored.id, collect());
        setFlash({ message: "Callback profile saved." });
        await renderProfileForm(root, stored.id);
      }
    } catch (error) {
      errors.show(error);
      announce("The profile was not saved.", "error");
    } finally {
      saveButton.disabled = false;
    }
  });
}

/**
 * Test on click: the form as it is once it changed (`isDirty()`), else the saved
 * profile; the result, or the failure, goes to the Test section.
 */
function testOnClick(testButton, { test, stored, collect, errors, isDirty }) {
  testButton.addEventListener("click", async () => {
    testButton.disabled = true;
    errors.clear();
    replaceChildren(test.output, h("p", { class: "hint", text: "Sending a test callback…" }));
    const options = test.event() ? { event: test.event() } : {};
    try {
      const result = isDirty()
        ? await api.testUnsaved(collect(), options)
        : await api.testSaved(stored.id, options);
      replaceChildren(test.output, testResult(result));
      announce(
        result.delivered ? "Test callback delivered." : "Test callback not delivered.",
        result.delivered ? "info" : "error",
      );
    } catch (error) {
      replaceChildren(
        test.output,
        h("p", { class: "notice error", text: `Test failed: ${error.message}` }),
      );
      if (error.errors.length) errors.show(error);
    } finally {
      testButton.disabled = false;
    }
  });
}

/**
 * Keeps the channel-dependent fields in step: the channel sets the events and methods
 * offered, the method the body, and the chosen events the variables offered everywhere
 * (picker, filters, required options, the event to test). Returns `refresh`, which draws
 * them for the channel chosen now; its first call keeps the stored choices.
 */
function followChannel(catalog, profile, { basics, body, required, filters, test, picker }) {
  let initial = true; // the first render shows the stored choices; a channel change clears them

  function refresh() {
    const spec = channelSpec(catalog, basics.channel.input.value);
    basics.showChannel(spec, initial ? profile.events : [], refreshVariables);
    body.showFor(basics.method.input.value);
    refreshVariables();
    initial = false;
  }

  function refreshVariables() {
    const spec = channelSpec(catalog, basics.channel.input.value);
    const chosen = basics.events();
    const variables = channelVariables(spec, chosen);
    picker.setVariables(variables);
    filters.filterRows.setVariables(variables);
    required.setVariables(variables, initial ? profile.required_options.variables || [] : null);
    test.setEvents(
      spec.channel === "default" ? [] : chosen.length ? chosen : spec.events.map((e) => e.name),
    );
  }

  const showBody = () => body.showFor(basics.method.input.value);
  basics.channel.input.addEventListener("change", refresh);
  basics.method.input.addEventListener("change", showBody);
  body.bodyType.input.addEventListener("change", showBody);
  return refresh;
}

/** The page around the form: heading, the notice of a save, facts, health, Delete. */
function showProfilePage(root, { profile, stored, flash, form, picker }) {
  const heading = h("h1", {
    id: "form-title",
    tabindex: "-1",
    text: stored ? `Edit: ${profile.title}` : "Add callback profile",
  });
  replaceChildren(
    root,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/profiles", text: "Callback Profiles" })),
    heading,
    flash ? flashNotice(flash) : null,
    stored ? profileFacts(stored) : null,
    stored ? profileHealth(stored) : null,
    h("div", { class: "form-layout" }, form, picker.el),
    stored ? deleteBox(stored) : null,
  );
  heading.focus();
  if (flash) announce(flash.message);
}

/** Render the form for profile `id` (edit) or a new one (id null). */
export async function renderProfileForm(root, id) {
  const [catalog, stored] = await Promise.all([api.catalog(), id ? api.getProfile(id) : null]);
  const profile = { ...NEW_PROFILE, ...(stored || {}) };
  const isNew = !stored;
  const flash = takeFlash();
  document.title = `${isNew ? "Add" : "Edit"} callback profile · Callback Profiles`;

  const form = h("form", {
    class: "profile-form",
    novalidate: true,
    "aria-labelledby": "form-title",
  });
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const basics = profileSection(profile, isNew);
  const { headers, el: headersEl } = headersSection(profile);
  const { queryParams, el: queryParamsEl } = queryParamsSection(profile);
  const body = bodySection(profile);
  const required = requiredOptionsSection(profile);
  const filters = filtersSection(profile);
  const encryption = encryptionSection(profile.encryption);
  const authentication = authenticationSection(profile.authentication);
  const delivery = deliverySection(profile);
  const test = testSection();
  const picker = variablePicker(form, () =>
    body.el.hidden || body.body.wrap.hidden ? basics.url.input : body.body.input,
  );
  let dirty = isNew; // Test sends the form itself once anything in it changed
  const changed = () => {
    dirty = true;
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  const refresh = followChannel(catalog, profile, {
    basics,
    body,
    required,
    filters,
    test,
    picker,
  });

  const collect = () =>
    collectProfile({
      title: basics.title.input.value,
      channel: basics.channel.input.value,
      events: basics.events(),
      method: basics.method.input.value,
      url: basics.url.input.value.trim(),
      headers: headers.collect(),
      query_params: queryParams.collect(),
      body_type: body.bodyType.input.value,
      body: body.body.input.value,
      form_fields: body.formFields.collect(),
      encryption: encryption.collect(),
      authentication: authentication.collect(),
      required_options: required.values(),
      filters: filters.filterRows.collect(),
      enabled: delivery.enabled.input.checked,
      retry_on: delivery.retryOn.input.value,
      max_age: delivery.maxAge.input.value.trim() || null,
      signing: { scheme: delivery.signingScheme.input.value },
    });
  const errors = errorReporter(form, summary, {
    headers,
    query_params: queryParams,
    form_fields: body.formFields,
  });
  const saveButton = h("button", { type: "submit", class: "button primary", text: "Save" });
  const testButton = h("button", { type: "button", class: "button secondary", text: "Test" });
  saveOnSubmit(form, { root, stored, collect, errors, saveButton });
  testOnClick(testButton, { test, stored, collect, errors, isDirty: () => dirty });

  replaceChildren(
    form,
    summary,
    basics.el,
    headersEl,
    queryParamsEl,
    body.el,
    encryption.el,
    authentication.el,
    required.el,
    filters.el,
    delivery.el,
    test.el,
    h(
      "div",
      { class: "actions sticky" },
      testButton,
      saveButton,
      h("a", { href: "#/profiles", class: "button secondary", text: "Cancel" }),
    ),
  );
  refresh();
  showProfilePage(root, { profile, stored, flash, form, picker });
}
