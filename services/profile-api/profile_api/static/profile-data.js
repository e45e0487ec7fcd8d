// A profile as data, with no page around it: what a new profile starts as, the body
// types, the variables a channel offers and the form's values turned into the API's
// profile body.

export const BODY_TYPES = [
  ["json", "JSON"],
  ["xml", "XML"],
  ["html", "HTML"],
  ["text", "Text"],
  ["form", "Form (x-www-form-urlencoded)"],
];

/** What a new profile starts as (the API's defaults, with a JSON body). */
export const NEW_PROFILE = {
  title: "",
  channel: "default",
  events: [],
  method: "POST",
  url: "",
  headers: {},
  query_params: {},
  body_type: "json",
  body: "",
  form_fields: null,
  encryption: { enabled: false, algorithm: "aes-256-gcm", scope: "values", key: null },
  authentication: { type: "none" },
  required_options: { enabled: false, variables: [] },
  filters: [],
  enabled: true,
  retry_on: "all_failures",
  max_age: null,
  signing: { scheme: "v1" },
};

/**
 * The variables a profile of this channel can use, in catalog order and without
 * repeats: the chosen events' variables (every event of the channel when none is
 * chosen yet) and the envelope variables. Default offers the envelope only.
 */
export function channelVariables(spec, chosenEvents) {
  const events = chosenEvents.length
    ? spec.events.filter((e) => chosenEvents.includes(e.name))
    : spec.events;
  const seen = new Map();
  for (const variable of [
    ...events.flatMap((e) => e.variables || []),
    ...(spec.envelope_variables || []),
  ]) {
    if (!seen.has(variable.name)) seen.set(variable.name, variable);
  }
  return [...seen.values()];
}

/** The API body: only what the chosen method and body type use is sent. */
export function collectProfile(values) {
  const profile = { ...values };
  const hasBody = values.method === "POST" || values.method === "PUT";
  if (!hasBody) {
    profile.body_type = null;
    profile.body = null;
    profile.form_fields = null;
  } else if (values.body_type === "form") {
    profile.body = null;
  } else {
    profile.form_fields = null;
    if (!values.body) {
      profile.body = null;
      profile.body_type = null;
    }
  }
  if (!values.encryption.enabled)
    profile.encryption = { ...values.encryption, key: values.encryption.key || null };
  if (!values.required_options.enabled)
    profile.required_options = { enabled: false, variables: [] };
  return profile;
}
