/**
 * Model presets: the architecture and training defaults of each named model, as data (presets.json).
 * A preset may `extends` another one and override fields (objects merge, arrays and scalars replace).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { UserError } from '../errors.js';

/** One Conv2D layer of the encoder. */
export interface ConvSpec {
  filters: number;
  kernel: number;
  stride: number;
}

/** Architecture and training defaults of a model. */
export interface Preset {
  /** Preset name (its key in presets.json). */
  name: string;
  description: string;
  /** Image side in pixels. */
  resolution: number;
  /** Which CLIP embedding the model is trained on. */
  conditioning: 'image' | 'text';
  /** Width of the CLIP embedding (512 for ViT-B/32). */
  embeddingDim: number;
  encoder: {
    /** Conv2D layers (same padding), each followed by LeakyReLU and BatchNorm. */
    convs: ConvSpec[];
    /** Dense layers after flatten + concat(embedding), each followed by LeakyReLU and BatchNorm. */
    dense: number[];
  };
  /** Size of z (mu and log-variance heads). */
  latentDim: number;
  /** Width of the linear condition layer on the embedding that is concatenated with z. */
  condDim: number;
  decoder: {
    /** Units of the first Dense layer (must equal the product of `reshape`). */
    dense: number;
    /** [height, width, channels] the dense output is reshaped to. */
    reshape: [number, number, number];
    /** Conv2DTranspose layers (same padding), each followed by LeakyReLU and BatchNorm. */
    convTranspose: ConvSpec[];
    /** Kernel of the final 3-filter sigmoid Conv2D. */
    outputKernel: number;
  };
  /** Negative slope of every LeakyReLU. */
  leakySlope: number;
  /** Dropout rate on z during training (0: none). */
  dropout: number;
  /** BatchNorm moving-average momentum and epsilon. */
  batchNorm: { momentum: number; epsilon: number };
  /** Training defaults (the trainer lets each be overridden). */
  train: { learningRate: number; batchSize: number; epochs: number; patience: number };
}

const positiveInt = z.number().int().positive();
const convSchema = z.object({ filters: positiveInt, kernel: positiveInt, stride: positiveInt }).strict();

/** Schema of a fully resolved preset (after `extends`). */
export const presetSchema = z
  .object({
    name: z.string().min(1),
    description: z.string(),
    resolution: positiveInt,
    conditioning: z.enum(['image', 'text']),
    embeddingDim: positiveInt,
    encoder: z.object({ convs: z.array(convSchema).min(1), dense: z.array(positiveInt) }).strict(),
    latentDim: positiveInt,
    condDim: positiveInt,
    decoder: z
      .object({
        dense: positiveInt,
        reshape: z.tuple([positiveInt, positiveInt, positiveInt]),
        convTranspose: z.array(convSchema),
        outputKernel: positiveInt,
      })
      .strict(),
    leakySlope: z.number().min(0).max(1),
    dropout: z.number().min(0).lt(1),
    batchNorm: z.object({ momentum: z.number().gt(0).lt(1), epsilon: z.number().positive() }).strict(),
    train: z
      .object({ learningRate: z.number().positive(), batchSize: positiveInt, epochs: positiveInt, patience: positiveInt })
      .strict(),
  })
  .strict();

type RawTable = Record<string, Record<string, unknown>>;

let table: Map<string, Preset> | null = null;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? deepMerge(base[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/**
 * Checks a preset's internal consistency (shapes line up); returns it unchanged.
 * @throws Error describing the first inconsistency.
 */
export function validatePreset(input: unknown): Preset {
  const parsed = presetSchema.safeParse(input);
  if (!parsed.success) {
    const name = isPlainObject(input) ? String(input.name) : '?';
    throw new Error(`preset ${name} is invalid: ${z.prettifyError(parsed.error)}`);
  }
  const p = parsed.data as Preset;
  let side = p.resolution;
  for (const c of p.encoder.convs) side = Math.ceil(side / c.stride);
  if (side < 1) throw new Error(`preset ${p.name}: the encoder reduces the image to nothing`);
  const [h, w, ch] = p.decoder.reshape;
  if (h * w * ch !== p.decoder.dense) {
    throw new Error(`preset ${p.name}: decoder.dense (${p.decoder.dense}) must equal ${h}x${w}x${ch} = ${h * w * ch}`);
  }
  const up = p.decoder.convTranspose.reduce((s, c) => s * c.stride, 1);
  if (h !== w || h * up !== p.resolution) {
    throw new Error(`preset ${p.name}: the decoder makes ${h * up}x${w * up} images, not ${p.resolution}x${p.resolution}`);
  }
  return p;
}

function resolve(raw: RawTable, name: string, seen: string[]): Record<string, unknown> {
  const entry = raw[name];
  if (!entry) throw new Error(`preset ${seen.at(-1) ?? name} extends unknown preset ${name}`);
  if (seen.includes(name)) throw new Error(`presets extend each other in a cycle: ${[...seen, name].join(' -> ')}`);
  const { extends: parent, ...own } = entry;
  const base = typeof parent === 'string' ? resolve(raw, parent, [...seen, name]) : {};
  return deepMerge(base, own);
}

/** Parses a preset table (the format of presets.json) into validated presets. */
export function parsePresetTable(raw: RawTable): Map<string, Preset> {
  const out = new Map<string, Preset>();
  for (const name of Object.keys(raw)) {
    out.set(name, validatePreset({ ...resolve(raw, name, []), name }));
  }
  return out;
}

function presets(): Map<string, Preset> {
  if (!table) {
    const raw = JSON.parse(readFileSync(new URL('./presets.json', import.meta.url), 'utf8')) as RawTable;
    table = parsePresetTable(raw);
  }
  return table;
}

/** Names of all presets, in the order of presets.json. */
export function presetNames(): string[] {
  return [...presets().keys()];
}

/**
 * The preset of that name (a fresh copy: callers may change it).
 * @throws UserError listing the known names when there is none of that name.
 */
export function getPreset(name: string): Preset {
  const p = presets().get(name);
  if (!p) throw new UserError(`There is no model preset "${name}". Known presets: ${presetNames().join(', ')}.`);
  return structuredClone(p);
}
