/**
 * Modality names on the wire. The server lists the generator's output channels by name
 * (`config.modalities`, channel order); a node holding a subset names its modalities in hello
 * (`capabilities.modalities`). Both sides map names to channels with this one function, so the
 * server weights each channel over the nodes that hold it and a node can verify that the channels
 * its discriminator reads are the ones the server means.
 */

/**
 * Channel (index into `server`) of each name in `held`, in `held`'s order; names match
 * case-insensitively. Throws an Error naming both lists when a name is unknown or repeated.
 */
export function modalityChannelsOnWire(server: readonly string[], held: readonly string[]): number[] {
  const lower = server.map((m) => m.toLowerCase());
  const both = `this node holds [${held.join(', ')}], the server's generator makes [${server.join(', ')}]`;
  const seen = new Set<number>();
  return held.map((name) => {
    const c = lower.indexOf(name.toLowerCase());
    if (c < 0) throw new Error(`unknown modality ${JSON.stringify(name)}: ${both}`);
    if (seen.has(c)) throw new Error(`modality ${JSON.stringify(name)} is named twice: ${both}`);
    seen.add(c);
    return c;
  });
}
