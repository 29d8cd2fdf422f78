// A time-series line chart (uPlot), sized to its container.
//
//   <${TimeChart} title="Requests" times=${[unixSeconds...]}
//     series=${[{label: 'Requests', values: [...], color: '#2563eb'}]} format=${fmtNumber} />

import { html, useEffect, useRef } from '../vendor/preact-htm.js';
import uPlot from '../vendor/uPlot.esm.js';

const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706'];

export function TimeChart({ title, times, series, format = String, height = 180, summary }) {
  const box = useRef();
  useEffect(() => {
    const element = box.current;
    const options = {
      width: Math.max(element.clientWidth, 200),
      height,
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#5b6472', grid: { stroke: '#e6e9ee' } },
        {
          stroke: '#5b6472', grid: { stroke: '#e6e9ee' },
          // Wide enough for the longest label ("$0.00003"), at about 7 px a character.
          size: (_, values) => 24 + 7 * Math.max(4, ...(values || []).map((v) => String(v).length)),
          values: (_, ticks) => ticks.map((v) => format(v)),
        },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || COLORS[i % COLORS.length],
          width: 2,
          fill: `${s.color || COLORS[i % COLORS.length]}1a`,
          points: { show: times.length < 40 },
          value: (_, v) => (v === null || v === undefined ? '—' : format(v)),
          spanGaps: false,
        })),
      ],
    };
    const plot = new uPlot(options, [times, ...series.map((s) => s.values)], element);
    const observer = new ResizeObserver(() => {
      const width = Math.max(element.clientWidth, 200);
      if (width !== plot.width) plot.setSize({ width, height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [times, series, height]);
  return html`
    <figure class="chart">
      <figcaption>${title}${summary !== undefined && html` <strong>${summary}</strong>`}</figcaption>
      <div ref=${box} class="chart-box" role="img"
        aria-label=${`${title}: ${times.length} points`}></div>
    </figure>`;
}
