/**
 * Raw msgpack for tests that must send what the codec would refuse to build
 * (wrong types, unknown fields, other versions). Same settings as the wire:
 * plain maps, no records.
 */
import { Packr } from "msgpackr";

const packr = new Packr({ useRecords: false });

export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function unpack(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
