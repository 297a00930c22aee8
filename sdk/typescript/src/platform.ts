// One object for the four services (each has its own base URL), typed by the `paths`
// generated from each service's OpenAPI document (make sdk), so a call to a path another
// service serves does not compile. `ok()` turns an error answer into a typed ProblemError;
// every POST carries an Idempotency-Key (a fresh one unless the call gives its own), so a
// retried write is applied once.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { paths as AttributionPaths } from "../../build/typescript/attribution";
import type { paths as LinksPaths } from "../../build/typescript/links";
import type { paths as NotificationsPaths } from "../../build/typescript/notifications";
import type { paths as RewardsPaths } from "../../build/typescript/rewards";
import { problemFrom } from "./problems";

export interface ServiceUrls {
  links: string;
  attribution: string;
  rewards: string;
  notifications: string;
}

/** `make dev`'s default ports. */
export function localUrls(host = "127.0.0.1"): ServiceUrls {
  return {
    links: `http://${host}:8001`,
    attribution: `http://${host}:8002`,
    rewards: `http://${host}:8003`,
    notifications: `http://${host}:8004`,
  };
}

export interface ReferralPlatform {
  links: Client<LinksPaths>;
  attribution: Client<AttributionPaths>;
  rewards: Client<RewardsPaths>;
  notifications: Client<NotificationsPaths>;
}

export const IDEMPOTENCY_HEADER = "Idempotency-Key";

const idempotency: Middleware = {
  onRequest({ request }) {
    if (request.method === "POST" && !request.headers.has(IDEMPOTENCY_HEADER)) {
      request.headers.set(IDEMPOTENCY_HEADER, crypto.randomUUID());
    }
    return request;
  },
};

/** `token`: the admin key (programs, keys) or a program's secret key (enrol, signups,
 * conversions, balances). */
export function createPlatform(
  urls: ServiceUrls,
  token: string,
  options: { fetch?: typeof fetch } = {},
): ReferralPlatform {
  const client = <Paths extends {}>(baseUrl: string): Client<Paths> => {
    const c = createClient<Paths>({
      baseUrl,
      headers: { Authorization: `Bearer ${token}` },
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    c.use(idempotency);
    return c;
  };
  return {
    links: client<LinksPaths>(urls.links),
    attribution: client<AttributionPaths>(urls.attribution),
    rewards: client<RewardsPaths>(urls.rewards),
    notifications: client<NotificationsPaths>(urls.notifications),
  };
}

/** The answer's body, or a typed ProblemError for an error answer:
 * `const program = await ok(platform.links.POST("/v1/programs", { body }))`. */
export async function ok<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    throw problemFrom(response, error);
  }
  return data as T;
}
