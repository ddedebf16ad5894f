/**
 * A small builder of ONNX graphs on top of the protobuf classes of `onnx-proto`: named inputs, outputs,
 * initializers (stored as raw little-endian bytes, so multi-million-weight tensors encode fast) and nodes,
 * encoded into a ModelProto.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Element types used by the exporter. */
export const ElemType = {
  float: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int64: onnx.TensorProto.DataType.INT64,
} as const;
export type ElemTypeName = keyof typeof ElemType;

/** A node attribute value; the key says its ONNX type. */
export type AttrValue = { int: number } | { float: number } | { ints: number[] } | { floats: number[] } | { string: string };

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('int' in v) return { name, type: T.INT, i: v.int };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('ints' in v) return { name, type: T.INTS, ints: v.ints };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.STRING, s: new TextEncoder().encode(v.string) };
}

function valueInfo(name: string, elem: ElemTypeName, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ElemType[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function rawBytes(data: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  // ONNX raw_data is little-endian; so is every platform Node runs on that onnxruntime-node supports.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Collects the parts of one ONNX graph. Names of values are unique strings chosen by the caller or generated. */
export class OnnxGraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  private fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Declares a graph input; `dims` entries that are strings are symbolic (e.g. the batch size). */
  input(name: string, elem: ElemTypeName, dims: (number | string)[]): string {
    const n = this.fresh(name);
    if (n !== name) throw new Error(`duplicate value name ${name}`);
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares a graph output (a value some node produces). */
  output(name: string, elem: ElemTypeName, dims: (number | string)[]): void {
    if (!this.names.has(name)) throw new Error(`output ${name} is not produced by the graph`);
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** Adds a float32 initializer and returns its name. */
  floats(hint: string, data: Float32Array, dims: number[]): string {
    return this.initializer(hint, ElemType.float, rawBytes(data), dims, data.length);
  }

  /** Adds an int64 initializer and returns its name. */
  int64s(hint: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    return this.initializer(hint, ElemType.int64, rawBytes(data), dims, values.length);
  }

  private initializer(hint: string, dataType: number, raw: Uint8Array, dims: number[], count: number): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== count) throw new Error(`initializer ${hint}: ${count} values do not fill shape [${dims.join(', ')}]`);
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType, dims, rawData: raw });
    return name;
  }

  /**
   * Adds a node with one output and returns the output's name.
   * @param op ONNX operator type (default domain)
   * @param inputs value names ('' for an omitted optional input)
   * @param attrs attributes
   * @param hint name of the output (made unique)
   */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = op.toLowerCase()): string {
    const out = this.fresh(hint);
    this.nodes.push({
      opType: op,
      name: `${out}_node`,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Number of nodes added so far. */
  get nodeCount(): number {
    return this.nodes.length;
  }

  /**
   * Encodes the graph as an ONNX model file.
   * @param opts opset of the default domain, graph name, and string metadata stored in `metadata_props`
   */
  encode(opts: { opset: number; graphName: string; producer: string; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: opts.opset }],
      producerName: opts.producer,
      docString: opts.docString,
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Reads the `metadata_props` of an encoded ONNX model. */
export function readOnnxMetadata(bytes: Uint8Array): Record<string, string> {
  const model = onnx.ModelProto.decode(bytes);
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}
