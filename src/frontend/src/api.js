// Calls to the backend's JSON API (same origin: the dev server proxies /api, the deployed
// backend serves this app itself).

export async function getJson(path, { signal } = {}) {
  const response = await fetch(path, { signal, headers: { Accept: 'application/json' } });
  if (!response.ok) {
    throw new Error(`${path} answered ${response.status}`);
  }
  return response.json();
}

export const fetchVersion = (options) => getJson('/api/version', options);
export const fetchHealth = (options) => getJson('/api/health', options);
