// The usage chart, drawn by Chart.js (the one charting library, bundled at
// build time and served at /vendor/chart.min.js): peak seats as bars,
// distinct users as a line, the seats owned and the threshold as flat lines.

const COLORS = {
  peak: 'rgba(31, 95, 191, 0.78)',
  peakBorder: '#164a96',
  users: '#d97706',
  owned: '#374151',
  threshold: '#c62828',
};

export class UsageChart {
  // onPick(index) is called when a bar is clicked (drillable levels only).
  constructor(canvas, onPick) {
    this.canvas = canvas;
    this.onPick = onPick;
    this.chart = null;
    this.drillable = false;
    this.titles = [];
  }

  // view: {labels, titles, peak, users, owned, thresholdCount, thresholdPct,
  //        drillable, xTitle, aria}
  show(view) {
    const { Chart } = window;
    if (!Chart) throw new Error('the chart library did not load');
    this.drillable = view.drillable;
    this.titles = view.titles;
    const n = view.labels.length;
    const datasets = [
      {
        type: 'bar', label: 'Peak seats in use (concurrent)', data: view.peak, order: 3,
        backgroundColor: COLORS.peak, borderColor: COLORS.peakBorder, borderWidth: 1,
        maxBarThickness: 42, categoryPercentage: 0.85, barPercentage: 0.95,
      },
      {
        type: 'line', label: 'Distinct users', data: view.users, order: 1,
        borderColor: COLORS.users, backgroundColor: COLORS.users, borderWidth: 2,
        pointStyle: 'rectRot', pointRadius: n > 90 ? 0 : 4, pointHoverRadius: 5, tension: 0,
      },
    ];
    if (view.owned > 0)
      datasets.push({
        type: 'line', label: `Seats owned (${view.owned})`, data: Array(n).fill(view.owned), order: 0,
        borderColor: COLORS.owned, backgroundColor: COLORS.owned, borderWidth: 2, borderDash: [2, 3],
        pointRadius: 0, pointHoverRadius: 0, pointStyle: 'line',
      });
    if (view.thresholdCount > 0)
      datasets.push({
        type: 'line', label: `Threshold ${view.thresholdPct}% (${view.thresholdCount} seats)`,
        data: Array(n).fill(view.thresholdCount), order: 0,
        borderColor: COLORS.threshold, backgroundColor: COLORS.threshold, borderWidth: 2, borderDash: [9, 5],
        pointRadius: 0, pointHoverRadius: 0, pointStyle: 'line',
      });
    const top = Math.max(1, view.owned || 0, ...view.peak, ...view.users);
    const config = {
      type: 'bar',
      data: { labels: view.labels, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: {
            title: { display: true, text: view.xTitle },
            ticks: { autoSkip: true, maxRotation: 0 },
            grid: { display: false },
          },
          y: {
            beginAtZero: true,
            suggestedMax: Math.ceil(top * 1.1),
            ticks: { precision: 0 },
            title: { display: true, text: 'Seats / users' },
          },
        },
        plugins: {
          legend: {
            position: 'bottom',
            labels: { usePointStyle: true, padding: 14, sort: (a, b) => a.datasetIndex - b.datasetIndex },
          },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? this.titles[items[0].dataIndex] : ''),
              footer: () => (this.drillable ? 'Click for details' : ''),
            },
          },
        },
        onClick: (evt) => {
          if (!this.drillable || !this.chart) return;
          const hit = this.chart.getElementsAtEventForMode(evt, 'index', { intersect: false }, false);
          if (hit.length) this.onPick(hit[0].index);
        },
        onHover: (evt, els) => {
          this.canvas.style.cursor = this.drillable && els.length ? 'pointer' : 'default';
        },
      },
    };
    if (this.chart) this.chart.destroy();
    this.chart = new Chart(this.canvas, config);
    this.canvas.setAttribute('aria-label', view.aria);
  }

  // For tests and the data table: what the chart shows.
  data() {
    if (!this.chart) return null;
    return {
      labels: this.chart.data.labels.slice(),
      datasets: this.chart.data.datasets.map((d) => ({ label: d.label, data: d.data.slice() })),
    };
  }
}
