import { type Logger, pino } from "pino";
import type { LogLevel } from "./options.js";

/** The default logger: pino, JSON lines on stdout, at `level`. */
export function createLogger(name: string, level: LogLevel): Logger {
  return pino({ name, level });
}
