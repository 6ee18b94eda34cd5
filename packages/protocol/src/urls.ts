/**
 * NATS server URLs as they may be shown: a URL can carry credentials
 * (`nats://user:password@host`, `nats://token@host`), and a message or a log
 * line that repeats the URL must not repeat them.
 */

/**
 * `urls` (one URL, or several joined by commas) with each password or token
 * replaced by `***`: `nats://app:***@host:4222`, `nats://***@host:4222`. The
 * user name stays, so a reader can still tell which credentials were used.
 */
export function redactUrl(urls: string): string {
  return urls.replace(/(^|,|\/\/)([^/@\s,]*)@/g, (_match, before: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return colon === -1 ? `${before}***@` : `${before}${userinfo.slice(0, colon)}:***@`;
  });
}
