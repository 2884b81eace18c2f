/** The server's counters, gauges and histograms, written as Prometheus text (version 0.0.4). */

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }
  write(name: string, help: string, out: string[]): void {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    this.buckets.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`));
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
  }
}

export class Metrics {
  /** Requests answered, by endpoint and status code. */
  readonly requests = new Map<string, number>();
  promptTokens = 0;
  cachedPromptTokens = 0;
  generatedTokens = 0;
  readonly latency = new Histogram(LATENCY_BUCKETS);
  readonly ttft = new Histogram(TTFT_BUCKETS);

  countRequest(endpoint: string, status: number): void {
    const key = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  render(gauges: { queueDepth: number; busySessions: number; sessions: number; ready: boolean }): string {
    const out: string[] = [];
    out.push('# HELP sparrow_requests_total HTTP requests answered, by endpoint and status code.', '# TYPE sparrow_requests_total counter');
    for (const [labels, n] of this.requests) out.push(`sparrow_requests_total{${labels}} ${n}`);
    const counter = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`);
    const gauge = (name: string, help: string, v: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`);
    counter('sparrow_prompt_tokens_total', 'Prompt tokens of completed requests (cached ones included).', this.promptTokens);
    counter('sparrow_prompt_tokens_cached_total', 'Prompt tokens served from a reused KV cache.', this.cachedPromptTokens);
    counter('sparrow_generated_tokens_total', 'Tokens generated.', this.generatedTokens);
    this.latency.write('sparrow_request_duration_seconds', 'Time from request to the end of its answer (generation endpoints).', out);
    this.ttft.write('sparrow_time_to_first_token_seconds', 'Time from request to its first generated token.', out);
    gauge('sparrow_queue_depth', 'Requests waiting for a session.', gauges.queueDepth);
    gauge('sparrow_sessions_busy', 'Sessions generating now.', gauges.busySessions);
    gauge('sparrow_sessions', 'Sessions in the pool.', gauges.sessions);
    gauge('sparrow_ready', '1 when the model is loaded and the server answers requests.', gauges.ready ? 1 : 0);
    return out.join('\n') + '\n';
  }
}
