/**
 * A minimal Prometheus registry: counters and gauges with typed labels, rendered in the text
 * exposition format. Enough for the daemon's own figures without a dependency.
 */
type LabelValues<L extends string> = {[K in L]: string}

interface Metric {
  render: () => string
}

function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

abstract class LabelledMetric<L extends string> implements Metric {
  protected readonly values = new Map<string, number>()
  protected abstract readonly type: 'counter'

  constructor (readonly name: string, readonly help: string, private readonly labelNames: readonly L[]) {}

  protected key (labels: LabelValues<L>): string {
    return this.labelNames.map(l => `${l}="${escapeLabel(labels[l])}"`).join(',')
  }

  get (labels: LabelValues<L>): number {
    return this.values.get(this.key(labels)) ?? 0
  }

  render (): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`]
    for (const [key, value] of this.values) lines.push(key === '' ? `${this.name} ${value}` : `${this.name}{${key}} ${value}`)
    return lines.join('\n')
  }
}

export class Counter<L extends string = never> extends LabelledMetric<L> {
  protected readonly type = 'counter'

  inc (labels: LabelValues<L>, by = 1): void {
    const key = this.key(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>()

  counter<L extends string = never> (name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.register(name, new Counter<L>(name, help, labelNames))
  }

  /** Prometheus text exposition format (version 0.0.4). */
  render (): string {
    return [...this.metrics.values()].map(m => m.render()).join('\n') + '\n'
  }

  private register<M extends Metric> (name: string, metric: M): M {
    if (this.metrics.has(name)) throw new Error(`metric ${name} registered twice`)
    this.metrics.set(name, metric)
    return metric
  }
}
