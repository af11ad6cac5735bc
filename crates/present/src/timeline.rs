//! `accord timeline`: each holder's percent of an entity at every date on
//! which it changed, as a table, JSON, CSV or an SVG chart.
//!
//! The changes come from `projector::ownership_timeline`; this module only
//! formats them. The chart is drawn with `plotters` (its SVG backend): time
//! on x, percent on y, one step line per holder (a stake holds until it
//! changes), a marker and a percent label at every change, the dates of the
//! changes marked, and a legend beside the plot. Percents are plotted as
//! integers of 1/10,000 of a percent (the report's six decimal places are
//! more than a pixel can show), so no `f64` carries a percent here either.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{Duration, NaiveDate};
use domain::values::{Date, Dec, PartyId};
use domain::KnownAt;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use projector::{EntityTimeline, TimelineReport};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::render::{self, Align, Table};
use crate::{Format, Style};

/// Writes the timeline as a table, JSON or CSV.
pub fn timeline(
    out: &mut dyn Write,
    format: Format,
    report: &TimelineReport,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => render::json(out, report),
        Format::Csv => print_csv(out, report),
        Format::Table => print_table(out, report, style),
    }
}

/// Why a report has no one entity to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// No entity has ownership recorded.
    Nothing(String),
    /// Several have, and none was named.
    Several(String),
}

/// Writes the SVG chart of the report's one entity (`entity` is the one asked for, if any),
/// subtitled with the question's dates.
pub fn chart(
    out: &mut dyn Write,
    report: &TimelineReport,
    entity: Option<&PartyId>,
    known_at: KnownAt,
) -> Result<Result<(), Pick>, ChartError> {
    let e = match one_entity(report, entity) {
        Ok(e) => e,
        Err(pick) => return Ok(Err(pick)),
    };
    let subtitle = subtitle(report.as_of, known_at);
    let svg = svg(e, report.as_of, &subtitle)?;
    out.write_all(svg.as_bytes())?;
    if !svg.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(Ok(()))
}

/// Drawing the chart failed, or writing it did.
#[derive(Debug)]
pub enum ChartError {
    Draw(String),
    Output(io::Error),
}

impl From<io::Error> for ChartError {
    fn from(e: io::Error) -> ChartError {
        ChartError::Output(e)
    }
}

fn subtitle(as_of: Date, known_at: KnownAt) -> String {
    let mut s = format!("Percent of all units held, by holder, up to {as_of}");
    match known_at {
        KnownAt::Seq(n) => s.push_str(&format!(", as known at seq {n}")),
        KnownAt::Time(t) => s.push_str(&format!(
            ", as known at {}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        KnownAt::Everything => {}
    }
    s
}

/// The one entity an SVG draws.
fn one_entity<'a>(
    report: &'a TimelineReport,
    entity: Option<&PartyId>,
) -> Result<&'a EntityTimeline, Pick> {
    match report.entities.as_slice() {
        [e] => Ok(e),
        [] => Err(Pick::Nothing(match entity {
            Some(e) => format!(
                "no ownership of `{e}` recorded on or before {}: nothing to draw",
                report.as_of
            ),
            None => format!(
                "no ownership recorded on or before {}: nothing to draw",
                report.as_of
            ),
        })),
        many => Err(Pick::Several(format!(
            "--format svg draws one entity: pass --entity, one of {}",
            many.iter()
                .map(|e| e.entity.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn print_csv(out: &mut dyn Write, r: &TimelineReport) -> io::Result<()> {
    let mut rows = Vec::new();
    for e in &r.entities {
        for c in &e.changes {
            for p in &c.holders {
                rows.push(vec![
                    r.as_of.to_string(),
                    e.entity.to_string(),
                    c.date.to_string(),
                    p.holder.to_string(),
                    p.units.to_string(),
                    p.percent.to_string(),
                    p.before.map(|b| b.to_string()).unwrap_or_default(),
                    c.events.join(" "),
                ]);
            }
        }
    }
    render::csv(
        out,
        &[
            "as_of", "entity", "date", "holder", "units", "percent", "before", "events",
        ],
        &rows,
    )?;
    Ok(())
}

fn print_table(out: &mut dyn Write, r: &TimelineReport, style: Style) -> io::Result<()> {
    if r.entities.is_empty() {
        writeln!(out, "No ownership changes on or before {}.", r.as_of)?;
    }
    for (i, e) in r.entities.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{} ({}): ownership changes up to {}",
            render::visible(e.name.as_deref().unwrap_or("?")),
            e.entity,
            r.as_of
        )?;
        let mut t = Table::new(&[
            ("date", Align::Left),
            ("holder", Align::Left),
            ("before", Align::Right),
            ("percent", Align::Right),
            ("units", Align::Right),
            ("events", Align::Left),
        ]);
        for c in &e.changes {
            for (k, p) in c.holders.iter().enumerate() {
                t.row(vec![
                    if k == 0 {
                        c.date.to_string()
                    } else {
                        String::new()
                    },
                    p.holder.to_string(),
                    p.before
                        .map(|b| render::percent(&b))
                        .unwrap_or_else(|| "-".into()),
                    render::percent(&p.percent),
                    render::units(&p.units),
                    if k == 0 {
                        c.events.join(" ")
                    } else {
                        String::new()
                    },
                ]);
            }
        }
        t.write(out, "  ", style)?;
    }
    Ok(())
}

/// Plot units per percent: the y axis counts 1/10,000 of a percent.
const Y_PER_PERCENT: i64 = 10_000;

fn y_of(percent: Decimal) -> i64 {
    (percent * Decimal::from(Y_PER_PERCENT))
        .round()
        .to_i64()
        .unwrap_or(0)
}

/// Colours that stay apart on white and for most colour-blind readers
/// (Okabe and Ito's palette, then a few more).
const COLOURS: &[RGBColor] = &[
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermilion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(120, 120, 120), // grey
    RGBColor(160, 130, 0),   // dark yellow
    RGBColor(0, 0, 0),       // black
];

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
const LEGEND_WIDTH: u32 = 270;
const FONT: &str = "sans-serif";

/// One holder's line: the polylines of its step plot and its change points.
struct Series {
    label: String,
    colour: RGBColor,
    lines: Vec<Vec<(NaiveDate, i64)>>,
    points: Vec<(NaiveDate, i64, String)>,
    /// The percent on the last date, or the date the holder left.
    last: String,
}

fn series(e: &EntityTimeline, end: NaiveDate) -> Vec<Series> {
    let mut out: Vec<Series> = e
        .holders
        .iter()
        .enumerate()
        .map(|(i, h)| Series {
            label: render::visible(&h.name.clone().unwrap_or_else(|| h.holder.to_string())),
            colour: COLOURS[i % COLOURS.len()],
            lines: Vec::new(),
            points: Vec::new(),
            last: String::new(),
        })
        .collect();
    let index: BTreeMap<&PartyId, usize> = e
        .holders
        .iter()
        .enumerate()
        .map(|(i, h)| (&h.holder, i))
        .collect();
    // The open polyline of each holder, if it holds something.
    let mut open: BTreeMap<usize, Vec<(NaiveDate, i64)>> = BTreeMap::new();
    for c in &e.changes {
        let d = c.date.naive();
        for p in &c.holders {
            let Some(&i) = index.get(&p.holder) else {
                continue;
            };
            // A change of units alone (a split) moves no line and starts no "since".
            if p.before == Some(p.percent) {
                continue;
            }
            let y = y_of(p.percent.0);
            let line = open.entry(i).or_default();
            if let Some(&(_, prev)) = line.last() {
                line.push((d, prev));
            }
            line.push((d, y));
            out[i].points.push((d, y, chart_percent(p.percent)));
            if p.percent.0.is_zero() {
                if let Some(l) = open.remove(&i) {
                    out[i].lines.push(l);
                }
                out[i].last = format!("none since {}", c.date);
            } else {
                out[i].last = format!("{} since {}", chart_percent(p.percent), c.date);
            }
        }
    }
    for (i, mut line) in open {
        if let Some(&(_, y)) = line.last() {
            line.push((end, y));
        }
        out[i].lines.push(line);
    }
    out
}

/// Decimal places of a percent on the chart: a label is read at a glance;
/// the table, CSV and JSON keep the report's six.
const CHART_PERCENT_DP: u32 = 2;

fn chart_percent(p: Dec) -> String {
    let rounded =
        p.0.round_dp_with_strategy(CHART_PERCENT_DP, RoundingStrategy::MidpointNearestEven)
            .normalize();
    render::percent(&Dec(rounded))
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("cannot draw the chart: {e:?}"))
}

/// Draws one entity's timeline as an SVG document.
fn svg(e: &EntityTimeline, as_of: Date, subtitle: &str) -> Result<String, ChartError> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, e, as_of, subtitle).map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    e: &EntityTimeline,
    as_of: Date,
    subtitle: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let title = format!(
        "Ownership of {} ({})",
        render::visible(e.name.as_deref().unwrap_or("?")),
        e.entity
    );
    let grey = RGBColor(90, 90, 90);
    root.draw(&Text::new(
        title,
        (24, 14),
        (FONT, 24).into_font().style(FontStyle::Bold).color(&BLACK),
    ))?;
    root.draw(&Text::new(
        subtitle.to_string(),
        (24, 46),
        (FONT, 15).into_font().color(&grey),
    ))?;
    let (_, body) = root.split_vertically(72);
    let (plot, legend) = body.split_horizontally(WIDTH - LEGEND_WIDTH);

    // x: from the first change to the last date shown, with some room.
    let first = e.changes.first().map_or(as_of.naive(), |c| c.date.naive());
    let last_change = e.changes.last().map_or(as_of.naive(), |c| c.date.naive());
    let end = as_of.naive().max(last_change);
    let span = (end - first).num_days().max(30);
    let pad = Duration::days((span / 25).max(10));
    let x_range = (first - pad)..(end + pad);
    // y: from 0 to a round 10 above the largest stake, at most 100.
    let max_y = e
        .changes
        .iter()
        .flat_map(|c| c.holders.iter().map(|p| y_of(p.percent.0)))
        .max()
        .unwrap_or(0);
    let top_percent = ((max_y / Y_PER_PERCENT + 8) / 10 * 10 + 10).min(100);
    let y_range = 0..top_percent * Y_PER_PERCENT;

    let mut chart = ChartBuilder::on(&plot)
        .margin_left(12)
        .margin_right(20)
        .margin_top(28)
        .margin_bottom(8)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(top_percent as usize / 10 + 1)
        .x_label_formatter(&|d| d.format("%Y-%m").to_string())
        .y_label_formatter(&|y| format!("{} %", y / Y_PER_PERCENT))
        .label_style((FONT, 14).into_font().color(&grey))
        .axis_desc_style((FONT, 15).into_font().color(&grey))
        .y_desc("percent of units")
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(230, 230, 230))
        .draw()?;

    // The dates of the changes: a thin line each, labelled at the top
    // unless too close to the previous label.
    let top = chart.backend_coord(&(first, top_percent * Y_PER_PERCENT)).1;
    let bottom = chart.backend_coord(&(first, 0)).1;
    let mut last_label_x: Option<i32> = None;
    for c in &e.changes {
        let d = c.date.naive();
        let x = chart.backend_coord(&(d, 0)).0;
        root.draw(&PathElement::new(
            vec![(x, top), (x, bottom)],
            RGBColor(170, 170, 170).stroke_width(1),
        ))?;
        if last_label_x.is_none_or(|l| x - l >= 96) {
            root.draw(&Text::new(
                c.date.to_string(),
                (x, top - 6),
                (FONT, 13)
                    .into_font()
                    .color(&grey)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))?;
            last_label_x = Some(x);
        }
    }

    let all = series(e, end);
    for s in &all {
        for line in &s.lines {
            chart.draw_series(LineSeries::new(
                line.iter().copied(),
                s.colour.stroke_width(3),
            ))?;
        }
        chart.draw_series(
            s.points
                .iter()
                .map(|(d, y, _)| Circle::new((*d, *y), 5, s.colour.filled())),
        )?;
    }

    // A percent label beside each change point, on a white backing so that
    // lines do not cross it. Each takes the first free place of: above
    // right, below right, above left, below left; a label with no free
    // place is left out (its marker stays, and the legend, table and JSON
    // have the figure) rather than drawn over another.
    let (area_x, area_y) = chart.plotting_area().get_pixel_range();
    let mut points: Vec<(NaiveDate, i32, i32, String, RGBColor)> = Vec::new();
    for s in &all {
        for (d, y, text) in &s.points {
            let (px, py) = chart.backend_coord(&(*d, *y));
            points.push((*d, py, px, text.clone(), s.colour));
        }
    }
    points.sort_by_key(|(d, py, ..)| (*d, *py));
    let mut taken: Vec<[i32; 4]> = Vec::new();
    for (_, py, px, text, colour) in points {
        let w = 8 * text.chars().count() as i32;
        let free = |r: &[i32; 4]| {
            r[0] >= area_x.start
                && r[2] <= area_x.end
                && r[1] >= area_y.start
                && r[3] <= area_y.end
                && taken
                    .iter()
                    .all(|t| r[2] < t[0] || t[2] < r[0] || r[3] < t[1] || t[3] < r[1])
        };
        let candidates = [
            (px + 9, py - 11),
            (px + 9, py + 12),
            (px - 9 - w, py - 11),
            (px - 9 - w, py + 12),
        ];
        let Some((x, y)) = candidates
            .into_iter()
            .find(|(x, y)| free(&[x - 2, y - 8, x + w, y + 8]))
        else {
            continue;
        };
        taken.push([x - 2, y - 8, x + w, y + 8]);
        root.draw(&Rectangle::new(
            [(x - 2, y - 8), (x + w, y + 8)],
            WHITE.mix(0.85).filled(),
        ))?;
        root.draw(&Text::new(
            text,
            (x, y),
            (FONT, 15)
                .into_font()
                .style(FontStyle::Bold)
                .color(&colour)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }

    // The legend, beside the plot so that it never hides a line.
    let (xs, ys) = legend.get_pixel_range();
    let (lx, ly) = (xs.start + 8, ys.start + 30);
    root.draw(&Text::new(
        "Holders".to_string(),
        (lx, ly),
        (FONT, 16).into_font().style(FontStyle::Bold).color(&BLACK),
    ))?;
    let mut y = ly + 36;
    for (i, s) in all.iter().enumerate() {
        if y > ys.end - 70 && i + 1 < all.len() {
            root.draw(&Text::new(
                format!("and {} more (see --format table)", all.len() - i),
                (lx, y),
                (FONT, 13)
                    .into_font()
                    .color(&grey)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            break;
        }
        root.draw(&PathElement::new(
            vec![(lx, y), (lx + 28, y)],
            s.colour.stroke_width(3),
        ))?;
        root.draw(&Circle::new((lx + 14, y), 5, s.colour.filled()))?;
        for line in wrap(&s.label, LEGEND_CHARS, 2) {
            root.draw(&Text::new(
                line,
                (lx + 38, y),
                (FONT, 15)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            y += 18;
        }
        root.draw(&Text::new(
            s.last.clone(),
            (lx + 38, y),
            (FONT, 13)
                .into_font()
                .color(&grey)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        y += 30;
    }
    Ok(())
}

/// Characters of a legend line at 15 px in the legend's width.
const LEGEND_CHARS: usize = 25;

/// Splits `s` into at most `lines` lines of at most `width` characters at
/// blanks, the last one cut with an ellipsis if it is still too long.
fn wrap(s: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        let len = cur.chars().count() + usize::from(!cur.is_empty()) + word.chars().count();
        if !cur.is_empty() && len > width && out.len() + 1 < lines {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    out.push(cur);
    for line in &mut out {
        if line.chars().count() > width {
            *line = line.chars().take(width - 1).collect::<String>() + "…";
        }
    }
    out
}
