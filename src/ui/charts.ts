/**
 * A small live line chart (uPlot, bundled: no CDN) of one percentage over the last few minutes. The
 * chart's element carries `data-points`, the number of samples drawn, for tests and for curious people.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const WINDOW_S = 5 * 60;
const HEIGHT = 110;

export class LiveChart {
  private readonly xs: number[] = [];
  private readonly ys: number[] = [];
  private readonly plot: uPlot;
  private readonly resize: ResizeObserver;
  /** An NFR threshold a replica on this node violates now: drawn as a dashed red line. */
  private threshold?: number;

  constructor(
    readonly element: HTMLElement,
    label: string,
    color: string,
  ) {
    this.plot = new uPlot(
      {
        width: Math.max(200, element.clientWidth),
        height: HEIGHT,
        legend: { show: false },
        cursor: { show: true, drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: [0, 100] } },
        axes: [
          {
            stroke: '#6b7280',
            grid: { stroke: '#eef0f3', width: 1 },
            ticks: { show: false },
            size: 24,
            space: 70,
            // Whole seconds at least: samples come every second or slower.
            incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600],
            font: '11px system-ui, sans-serif',
            values: (_u, splits) => splits.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour12: false })),
          },
          { stroke: '#6b7280', grid: { stroke: '#eef0f3', width: 1 }, ticks: { show: false }, size: 34, font: '11px system-ui, sans-serif', values: (_u, splits) => splits.map((v) => `${v}%`) },
        ],
        series: [{}, { label, stroke: color, width: 2, fill: `${color}22`, points: { show: false } }],
        hooks: { draw: [(u) => this.drawThreshold(u)] },
      },
      [[], []],
      element,
    );
    this.resize = new ResizeObserver(() => {
      const width = Math.max(200, element.clientWidth);
      if (width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
    });
    this.resize.observe(element);
    element.dataset.points = '0';
  }

  /** Adds a sample (time in ms); older or repeated samples are ignored. */
  add(timeMs: number, value: number): void {
    const t = timeMs / 1000;
    if (this.xs.length && t <= this.xs[this.xs.length - 1]!) return;
    this.xs.push(t);
    this.ys.push(value);
    while (this.xs.length && this.xs[0]! < t - WINDOW_S) {
      this.xs.shift();
      this.ys.shift();
    }
    this.plot.setData([this.xs, this.ys]);
    this.element.dataset.points = String(this.xs.length);
  }

  /** Marks the series as offending an NFR rule at `threshold` (undefined: no longer); `why` becomes the tooltip. */
  setThreshold(threshold: number | undefined, why = ''): void {
    if (threshold === this.threshold && this.element.title === why) return;
    this.threshold = threshold;
    this.element.classList.toggle('offending', threshold !== undefined);
    this.element.title = why;
    if (threshold === undefined) delete this.element.dataset.threshold;
    else this.element.dataset.threshold = String(threshold);
    this.plot.redraw(false);
  }

  private drawThreshold(u: uPlot): void {
    if (this.threshold === undefined) return;
    const y = Math.round(u.valToPos(this.threshold, 'y', true));
    const { ctx } = u;
    ctx.save();
    ctx.strokeStyle = '#dc2626';
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot.destroy();
  }
}
