package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// Charts are drawn on the server as inline SVG: no script, no chart library, nothing to
// download, and readable by a screen reader through the figure's title, its description and
// the table printed beside every chart. Colours differ by at least 3:1 against white
// (WCAG 2.1 1.4.11) and each series is also told apart by its legend text.

// seriesColours are the series' colours, in order.
var seriesColours = []string{"#0b4f8a", "#a84f00", "#2b6e31"}

// barRow is one category of a bar chart: its label and a value per series. A NaN value is
// withheld (a suppressed statistic): it draws no bar, and «:» unless Texts says otherwise.
type barRow struct {
	Label  string
	Values []float64
	// Texts are the value labels drawn at the bars' ends (defaults to the value).
	Texts []string
}

// barChart draws horizontal bars, one group per row and one bar per series.
func barChart(id, title, desc string, series []string, rows []barRow) template.HTML {
	const (
		labelW = 190
		barW   = 420
		textW  = 130
		barH   = 14
		gap    = 3
		groupG = 10
		top    = 34
	)
	maxV := 0.0
	for _, r := range rows {
		for _, v := range r.Values {
			if !math.IsNaN(v) {
				maxV = math.Max(maxV, v)
			}
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	groupH := len(series)*(barH+gap) - gap + groupG
	h := top + len(rows)*groupH + 8
	w := labelW + barW + textW
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="diagram" role="img" aria-labelledby="%[1]s-tittel %[1]s-beskrivelse" viewBox="0 0 %[2]d %[3]d" width="%[2]d" height="%[3]d" xmlns="http://www.w3.org/2000/svg">`, id, w, h)
	fmt.Fprintf(&b, `<title id="%s-tittel">%s</title><desc id="%s-beskrivelse">%s</desc>`, id, esc(title), id, esc(desc))
	legend(&b, series, labelW)
	for i, r := range rows {
		y := top + i*groupH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" font-size="13" fill="#1b1b1b">%s</text>`, labelW-8, y+barH, esc(clip(r.Label, 26)))
		for s, v := range r.Values {
			by := y + s*(barH+gap)
			bw, text := 0, ":"
			if !math.IsNaN(v) {
				bw = int(math.Round(v / maxV * barW))
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"></rect>`, labelW, by, max(bw, 1), barH, seriesColours[s%len(seriesColours)])
				text = formatValue(v)
			}
			if s < len(r.Texts) && r.Texts[s] != "" {
				text = r.Texts[s]
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#1b1b1b">%s</text>`, labelW+bw+5, by+barH-3, esc(text))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#767676"></line>`, labelW, top-4, labelW, h-6)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineSeries is one line of a line chart. A NaN value is withheld (a suppressed statistic):
// the line breaks there and the point reads «:» on the axis.
type lineSeries struct {
	Name   string
	Values []float64
}

// lineChart draws one line per series over the x labels (years), with a marker and the value
// at each point. Where none is true there are no figures (a fylke before it was made): the
// lines break there too, and the point reads «–», not «:».
func lineChart(id, title, desc string, xs []string, none []bool, series []lineSeries) template.HTML {
	const (
		left   = 56
		right  = 24
		top    = 40
		bottom = 34
		plotW  = 600
		plotH  = 240
	)
	w, h := left+plotW+right, top+plotH+bottom
	maxV := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				maxV = math.Max(maxV, v)
			}
		}
	}
	step := niceStep(maxV / 4)
	top4 := step * math.Ceil(maxV/step)
	if top4 == 0 {
		top4 = 1
	}
	x := func(i int) float64 {
		if len(xs) <= 1 {
			return left + plotW/2
		}
		return left + float64(i)*plotW/float64(len(xs)-1)
	}
	y := func(v float64) float64 { return top + plotH - v/top4*plotH }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="diagram" role="img" aria-labelledby="%[1]s-tittel %[1]s-beskrivelse" viewBox="0 0 %[2]d %[3]d" width="%[2]d" height="%[3]d" xmlns="http://www.w3.org/2000/svg">`, id, w, h)
	fmt.Fprintf(&b, `<title id="%s-tittel">%s</title><desc id="%s-beskrivelse">%s</desc>`, id, esc(title), id, esc(desc))
	names := make([]string, len(series))
	for i, s := range series {
		names[i] = s.Name
	}
	legend(&b, names, left)
	for v := 0.0; v <= top4+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#d0d0d0"></line>`, left, y(v), left+plotW, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="12" fill="#1b1b1b">%s</text>`, left-6, y(v)+4, esc(formatValue(v)))
	}
	for i, l := range xs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="12" fill="#1b1b1b">%s</text>`, x(i), top+plotH+20, esc(l))
	}
	for si, s := range series {
		colour := seriesColours[si%len(seriesColours)]
		var pts []string
		line := func() {
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"></polyline>`, strings.Join(pts, " "), colour)
			}
			pts = nil
		}
		for i, v := range s.Values {
			if math.IsNaN(v) {
				line()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		line()
		for i, v := range s.Values {
			dy := -7.0 // labels of every other series below the point, so they do not collide
			if si%2 == 1 {
				dy = 16
			}
			if math.IsNaN(v) {
				mark := ":"
				if i < len(none) && none[i] {
					mark = "–"
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`, x(i), y(0)+dy, colour, mark)
				continue
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"></circle>`, x(i), y(v), colour)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="%s">%s</text>`, x(i), y(v)+dy, colour, esc(formatValue(v)))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// legend draws the series' names with their colours on the first line.
func legend(b *strings.Builder, names []string, x int) {
	for i, n := range names {
		fmt.Fprintf(b, `<rect x="%d" y="8" width="14" height="14" fill="%s"></rect>`, x, seriesColours[i%len(seriesColours)])
		fmt.Fprintf(b, `<text x="%d" y="20" font-size="13" fill="#1b1b1b">%s</text>`, x+20, esc(n))
		x += 30 + 8*len([]rune(n))
	}
}

// niceStep rounds a grid step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return number(int64(v))
	}
	return decimal(math.Round(v*10) / 10)
}

func esc(s string) string { return template.HTMLEscapeString(s) }

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
