/**
 * Turns a `--data` argument into per-node training sets and a held-out test set:
 *   phantom[:t1,t1c,t2,flair]   the embedded, seeded phantom set (default)
 *   mricron                     Colin27 T1 + AAL atlas from Debian's mricron-data, 4 axial slabs
 *   brats:DIR                   a BraTS-style folder, cases split across nodes, 20% of cases held out
 *   png:IMAGES,LABELS           2-D PNG pairs, split across nodes, every 5th pair held out
 */
import {
  loadBrats, loadMricron, loadPngPairs, makePhantom, partitionDataset, subsetDataset, type Dataset,
  type PhantomModality,
} from '../data/index.js';

export interface FederatedData {
  /** What was loaded, for reports. */
  name: string;
  nodes: Dataset[];
  test: Dataset;
}

export interface DataSourceOptions {
  size: number;
  nodes: number;
  seed: number;
}

export async function loadDataSource(spec: string, o: DataSourceOptions): Promise<FederatedData> {
  const [kind, arg] = splitOnce(spec, ':');
  switch (kind) {
    case 'phantom': {
      const modalities = arg ? (arg.split(',') as PhantomModality[]) : undefined;
      const d = makePhantom({ size: o.size, numNodes: o.nodes, seed: o.seed, ...(modalities ? { modalities } : {}) });
      return { name: spec, nodes: d.nodes, test: d.test };
    }
    case 'mricron': {
      const d = await loadMricron({ size: o.size, numNodes: o.nodes, ...(arg ? { dir: arg } : {}) });
      return { name: spec, nodes: d.nodes, test: d.test };
    }
    case 'brats': {
      if (!arg) throw new Error('--data brats:DIR needs the folder of BraTS cases');
      return splitPooled(spec, await loadBrats(arg, { size: o.size }), o.nodes);
    }
    case 'png': {
      const [imagesDir, labelsDir] = splitOnce(arg ?? '', ',');
      if (!imagesDir || !labelsDir) throw new Error('--data png:IMAGES_DIR,LABELS_DIR needs both folders');
      return splitPooled(spec, await loadPngPairs({ imagesDir, labelsDir, size: o.size }), o.nodes);
    }
    default:
      throw new Error(`unknown --data "${spec}": use phantom[:modalities], mricron, brats:DIR or png:IMAGES,LABELS`);
  }
}

/** Every 5th slice to the test set, the rest split into contiguous node shares. */
function splitPooled(name: string, all: Dataset, nodes: number): FederatedData {
  const idx = all.slices.map((_, i) => i);
  const test = subsetDataset(all, idx.filter((i) => i % 5 === 4));
  const train = subsetDataset(all, idx.filter((i) => i % 5 !== 4));
  const per = Math.ceil(train.slices.length / nodes);
  return { name, nodes: partitionDataset(train, nodes, (_, i) => Math.floor(i / per)), test };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
