// Reading Prometheus text in tests.

/** The value of one series in Prometheus text (labels as printed by prom-client, in order). */
export function metricSample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
