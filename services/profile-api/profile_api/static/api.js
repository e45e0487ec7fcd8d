// The REST API as the page uses it (contract §2, §3, §7): one place that adds the
// api-key header and turns problem bodies into errors the views can show.

const KEY_STORAGE = "callbacks.apiKey";

export class ApiError extends Error {
  /** `problem` is the API's problem body ({type, title, status, detail, errors}). */
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed with status ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
  }
}

/** The key lives in sessionStorage only: it is gone when the tab closes. */
export const session = {
  get key() {
    return window.sessionStorage.getItem(KEY_STORAGE);
  },
  signIn(key) {
    window.sessionStorage.setItem(KEY_STORAGE, key);
  },
  signOut() {
    window.sessionStorage.removeItem(KEY_STORAGE);
    catalogPromise = null;
  },
};

let onUnauthorized = () => {};

/** Called when the API says the key is wrong (401): the app signs the user out. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

async function request(method, path, { body = undefined, params = undefined, key = null } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json", "api-key": key || session.key || "" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, {
      title: "Network error",
      detail: `The API could not be reached (${error.message}).`,
    });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 300) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return data;
}

let catalogPromise = null;

export const api = {
  /** Check a key before keeping it: the catalog is the cheapest authenticated call. */
  async verifyKey(key) {
    await request("GET", "/v1/channels", { key });
  },
  /** The channel/event/variable catalog, fetched once per sign-in. */
  catalog() {
    if (!catalogPromise) {
      catalogPromise = request("GET", "/v1/channels").catch((error) => {
        catalogPromise = null;
        throw error;
      });
    }
    return catalogPromise;
  },
  listProfiles(params) {
    return request("GET", "/v1/callback-profiles", { params });
  },
  getProfile(id) {
    return request("GET", `/v1/callback-profiles/${encodeURIComponent(id)}`);
  },
  createProfile(profile) {
    return request("POST", "/v1/callback-profiles", { body: profile });
  },
  updateProfile(id, profile) {
    return request("PUT", `/v1/callback-profiles/${encodeURIComponent(id)}`, { body: profile });
  },
  deleteProfile(id) {
    return request("DELETE", `/v1/callback-profiles/${encodeURIComponent(id)}`);
  },
  testUnsaved(profile, options) {
    return request("POST", "/v1/callback-profiles/test", { body: { ...profile, ...options } });
  },
  testSaved(id, options) {
    return request("POST", `/v1/callback-profiles/${encodeURIComponent(id)}/test`, {
      body: options,
    });
  },
  listDeliveries(params) {
    return request("GET", "/v1/deliveries", { params });
  },
  getDelivery(id) {
    return request("GET", `/v1/deliveries/${encodeURIComponent(id)}`);
  },
  redeliver(id) {
    return request("POST", `/v1/deliveries/${encodeURIComponent(id)}/retry`);
  },
  /** Bulk recovery: {since, until?, status: "failed" | "all"} → {id, status, total, done}. */
  recover(profileId, body) {
    return request("POST", `/v1/callback-profiles/${encodeURIComponent(profileId)}/recover`, {
      body,
    });
  },
  getRecovery(id) {
    return request("GET", `/v1/recoveries/${encodeURIComponent(id)}`);
  },
  reportSettings() {
    return request("GET", "/v1/callback-reports/settings");
  },
  saveReportSettings(settings) {
    return request("PUT", "/v1/callback-reports/settings", { body: settings });
  },
  sendReportNow() {
    return request("POST", "/v1/callback-reports/send-now");
  },
  sendNowStatus(requestId) {
    return request("GET", `/v1/callback-reports/send-now/${encodeURIComponent(requestId)}`);
  },
  timezones() {
    return request("GET", "/v1/callback-reports/timezones");
  },
  /** Delivered and failed per bucket: {from, to, bucket: "day"|"hour", profile_id}. */
  summary(params) {
    return request("GET", "/v1/callback-reports/summary", { params });
  },
};
