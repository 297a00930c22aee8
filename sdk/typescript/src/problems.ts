// Every error answer as a typed exception. The services answer errors as RFC 9457
// `application/problem+json` documents; an answer that is not one (a proxy's HTML page)
// still becomes a ProblemError with its status, so callers catch one family of errors.

/** The services' problem types are URIs under this base; `kind` is the part after it. */
export const TYPE_BASE = "https://referral-platform.dev/problems/";

export interface FieldProblem {
  field: string;
  message: string;
}

export class ProblemError extends Error {
  readonly status: number;
  /** A stable URI naming the kind of problem. */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The offending field, if one is. */
  readonly field: string | undefined;
  /** Every invalid field (422). */
  readonly errors: FieldProblem[];
  readonly instance: string | undefined;
  /** The whole problem document (some problems carry more members). */
  readonly body: Record<string, unknown>;
  readonly headers: Headers;

  constructor(status: number, body: Record<string, unknown>, headers: Headers, text = "") {
    const title = typeof body.title === "string" ? body.title : `HTTP ${status}`;
    const detail = typeof body.detail === "string" ? body.detail : text.slice(0, 500);
    const field = typeof body.field === "string" ? body.field : undefined;
    super(`${status} ${title}: ${detail}${field ? ` (field ${field})` : ""}`);
    this.name = new.target.name;
    this.status = status;
    this.type = typeof body.type === "string" ? body.type : "about:blank";
    this.title = title;
    this.detail = detail;
    this.field = field;
    this.errors = Array.isArray(body.errors)
      ? body.errors
          .filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null)
          .map((e) => ({ field: String(e.field ?? ""), message: String(e.message ?? "") }))
      : [];
    this.instance = typeof body.instance === "string" ? body.instance : undefined;
    this.body = body;
    this.headers = headers;
  }

  /** The problem type without its base: `program-not-found`, `validation-error`. */
  get kind(): string {
    return this.type.startsWith(TYPE_BASE) ? this.type.slice(TYPE_BASE.length) : this.type;
  }
}

/** 401 (no or unknown key) or 403 (a key that may not do this). */
export class AuthError extends ProblemError {}
/** 404: what the path names does not exist (`field` names the path parameter). */
export class NotFoundError extends ProblemError {}
/** 409: the request contradicts the current state, or an Idempotency-Key was reused with another body. */
export class ConflictError extends ProblemError {}
/** 422: a value breaks a rule; `errors` lists every offending field. */
export class ValidationError extends ProblemError {}
/** 429: too many requests; `retryAfter` is the wait (seconds) the service asked for, if any. */
export class RateLimitError extends ProblemError {
  get retryAfter(): number | undefined {
    const value = Number(this.headers.get("Retry-After") ?? Number.NaN);
    return Number.isFinite(value) ? value : undefined;
  }
}

const BY_STATUS: Record<number, typeof ProblemError> = {
  401: AuthError,
  403: AuthError,
  404: NotFoundError,
  409: ConflictError,
  422: ValidationError,
  429: RateLimitError,
};

/** The exception for an error answer: `error` is what openapi-fetch parsed of its body. */
export function problemFrom(response: Response, error: unknown): ProblemError {
  const body =
    typeof error === "object" && error !== null && !Array.isArray(error)
      ? (error as Record<string, unknown>)
      : {};
  const text = typeof error === "string" ? error : "";
  const Kind = BY_STATUS[response.status] ?? ProblemError;
  return new Kind(response.status, body, response.headers, text);
}
