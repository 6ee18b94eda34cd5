/**
 * The operator's actions — retry, cancel, change a deadline — through the
 * same SDK calls as the CLI's `retry`, `cancel`, and `updateDeadline`. Each
 * is written to the audit log once it is decided: who asked (the peer's
 * address and user agent), what, on which task, and the outcome (ok, or the
 * error's code); never a payload. The HTTP layer has already checked that
 * the request is same-origin with the session's CSRF token.
 */
import type { FrontierClient } from "@frontier/client";
import type { TaskState } from "@frontier/core";
import type { Logger } from "pino";
import { InputError } from "./input-error.js";
import { deadlineValue, idParam } from "./query-input.js";

export const ACTIONS = ["retry", "cancel", "deadline"] as const;
export type ActionName = (typeof ACTIONS)[number];

export function isAction(name: string): name is ActionName {
  return (ACTIONS as readonly string[]).includes(name);
}

/** A cancellation's reason is stored and shown to others: kept short. */
const MAX_REASON_LENGTH = 1_024;

export interface ActionRequester {
  readonly remote: string;
  readonly userAgent: string;
}

export interface ActionReply {
  readonly action: ActionName;
  readonly taskId: string;
  /** retry: the task's state after (RUNNABLE or WAITING). */
  readonly state?: TaskState;
}

type ActionBody =
  | { readonly action: "retry"; readonly workflowId?: string; readonly deadline?: number }
  | { readonly action: "cancel"; readonly workflowId?: string; readonly reason?: string }
  | { readonly action: "deadline"; readonly workflowId?: string; readonly deadline: number };

const FIELDS: Readonly<Record<ActionName, readonly string[]>> = {
  retry: ["workflowId", "deadline"],
  cancel: ["workflowId", "reason"],
  deadline: ["workflowId", "deadline"],
};

/** The JSON body of `POST /api/tasks/:id/<action>`, checked field by field; an unknown field is refused. */
export function actionBody(action: ActionName, body: unknown): ActionBody {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InputError("the body must be a JSON object");
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!FIELDS[action].includes(key)) {
      throw new InputError(
        `${action} takes ${FIELDS[action].join(", ")}; unknown field ${JSON.stringify(key)}`,
      );
    }
  }
  const wf = fields["workflowId"];
  if (wf !== undefined && typeof wf !== "string") throw new InputError("workflowId must be a string");
  const workflowId = idParam("workflowId", wf);
  const routed = workflowId === undefined ? {} : { workflowId };
  switch (action) {
    case "retry":
      return {
        action,
        ...routed,
        ...(fields["deadline"] === undefined
          ? {}
          : { deadline: deadlineValue("deadline", fields["deadline"]) }),
      };
    case "cancel": {
      const reason = fields["reason"];
      if (reason !== undefined && (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH)) {
        throw new InputError(`reason must be a string of at most ${MAX_REASON_LENGTH} characters`);
      }
      return { action, ...routed, ...(reason === undefined || reason === "" ? {} : { reason }) };
    }
    case "deadline":
      if (fields["deadline"] === undefined) throw new InputError("deadline is required");
      return { action, ...routed, deadline: deadlineValue("deadline", fields["deadline"]) };
  }
}

export class ActionRunner {
  constructor(
    private readonly client: FrontierClient,
    private readonly audit: Logger,
  ) {}

  async run(taskId: string, body: ActionBody, by: ActionRequester): Promise<ActionReply> {
    const record = { audit: true, action: body.action, taskId, ...fieldsOf(body), ...by };
    try {
      const reply = await this.apply(taskId, body);
      this.audit.info({ ...record, outcome: "ok", ...reply }, `console: ${body.action} ${taskId}: ok`);
      return { action: body.action, taskId, ...reply };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.audit.info(
        { ...record, outcome: "refused", code: typeof code === "string" ? code : "ERROR" },
        `console: ${body.action} ${taskId}: refused`,
      );
      throw err;
    }
  }

  private async apply(taskId: string, body: ActionBody): Promise<{ state?: TaskState }> {
    const routed = body.workflowId === undefined ? {} : { workflowId: body.workflowId };
    switch (body.action) {
      case "retry": {
        const { state } = await this.client.retry(taskId, {
          ...routed,
          ...(body.deadline === undefined ? {} : { deadline: body.deadline }),
        });
        return { state };
      }
      case "cancel":
        await this.client.cancel(taskId, {
          ...routed,
          ...(body.reason === undefined ? {} : { reason: body.reason }),
        });
        return {};
      case "deadline":
        await this.client.updateDeadline(taskId, body.deadline, routed);
        return {};
    }
  }
}

/** What the audit line says of the request: everything the operator gave (a task's payload is never read). */
function fieldsOf(body: ActionBody): Record<string, unknown> {
  return {
    ...(body.workflowId === undefined ? {} : { workflowId: body.workflowId }),
    ...("deadline" in body && body.deadline !== undefined ? { deadline: body.deadline } : {}),
    ...("reason" in body && body.reason !== undefined ? { reason: body.reason } : {}),
  };
}
