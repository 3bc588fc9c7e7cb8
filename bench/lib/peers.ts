/**
 * The peers' figures from shared/PEER-BENCH.md (measured on this kind of machine on 2026-11-21, Node v20.20.2,
 * fake LWA in a separate process over TLS on loopback), copied here so docs/benchmarks.md can show them beside
 * ours. Only the rows our benchmarks have a counterpart for.
 */
export const PEER_BENCH = {
  measured: '2026-11-21',
  node: 'v20.20.2',
  machine: '2 cores (AMD EPYC), 24 GiB RAM, linux x64',
  peers: [
    {
      name: 'amazon-sp-api (amz-tools) 1.2.1',
      cachedToken: '255 M/s (3.9 ns/op) — a property read, no expiry check',
      concurrentFirstToken: 'n/a (no lazy getter)',
      lwaErrors: '68/100 ok, 100 LWA calls (no retry)',
      memory: '2.88 KB heap/client (10,000 token clients)',
    },
    {
      name: '@sp-api-sdk/auth (bizon) 3.1.4',
      cachedToken: '8.7 M/s (115.4 ns/op)',
      concurrentFirstToken: '1 LWA call, 0 failed, 35 ms',
      lwaErrors: '68/100 ok, 100 LWA calls (no retry)',
      memory: '0.52 KB heap/client (10,000 token clients)',
    },
    {
      name: 'official amazon-sp-api-sdk-js 1.12.0',
      cachedToken: '565 k/s (1769 ns/op)',
      concurrentFirstToken: '1,000 LWA calls, 0 failed, 1785 ms',
      lwaErrors: '68/100 ok, 100 LWA calls (no retry)',
      memory: '0.97 KB heap/client (10,000 token clients)',
    },
  ],
} as const
