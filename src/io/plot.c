/* plot.c — line plots (the noise schedules among them), captioned image strips and trajectory pictures drawn
   with cairo (antialiased vector drawing and text), returned as RGB/gray ddpm_image so that ddpm_png_write keeps
   the run's tEXt chunks. */
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define PLOT_FONT "DejaVu Sans"
#define PLOT_PI 3.14159265358979323846
#define PLOT_DEFAULT_W 900
#define PLOT_DEFAULT_H 560
#define PLOT_MIN_W 240
#define PLOT_MIN_H 160
#define PLOT_MAX_SIDE 8192
#define PLOT_MAX_SERIES 64
#define PLOT_MAX_POINTS (1 << 24)
#define PLOT_MAX_TEXT 1024
#define STRIP_PAD 8                /* white pixels around and between strip cells */
#define STRIP_MAX_SIDE 32767       /* cairo's image surface limit */
#define STRIP_MAX_PIXELS (1LL << 28)

/* Tableau 10 (matplotlib's default qualitative palette): distinct hues that read well on white. */
static const double palette[10][3] = {
    {0x1f / 255.0, 0x77 / 255.0, 0xb4 / 255.0}, {0xff / 255.0, 0x7f / 255.0, 0x0e / 255.0},
    {0x2c / 255.0, 0xa0 / 255.0, 0x2c / 255.0}, {0xd6 / 255.0, 0x27 / 255.0, 0x28 / 255.0},
    {0x94 / 255.0, 0x67 / 255.0, 0xbd / 255.0}, {0x8c / 255.0, 0x56 / 255.0, 0x4b / 255.0},
    {0xe3 / 255.0, 0x77 / 255.0, 0xc2 / 255.0}, {0x7f / 255.0, 0x7f / 255.0, 0x7f / 255.0},
    {0xbc / 255.0, 0xbd / 255.0, 0x22 / 255.0}, {0x17 / 255.0, 0xbe / 255.0, 0xcf / 255.0},
};

void ddpm_plot_palette(int i, double rgb[3]) {
    i = (i % 10 + 10) % 10;
    for (int c = 0; c < 3; c++) rgb[c] = palette[i][c];
}

typedef struct {
    double lo, hi, step;   /* axis range and tick spacing (a 1, 2 or 5 times a power of ten) */
    int decimals, use_g;   /* tick label format */
} plot_axis;

typedef struct {
    double x0, y0, x1, y1; /* pixel rectangle, x0 < x1, y0 < y1 */
} plot_rect;

/* ------------------------------------------------------------------------------- validation */

/* 1 if s is well-formed UTF-8 (no overlongs, no surrogates) of at most PLOT_MAX_TEXT bytes. */
static int utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    if (len > PLOT_MAX_TEXT) return 0;
    while (*p) {
        unsigned c = *p;
        int extra;
        unsigned cp;
        if (c < 0x80) { p++; continue; }
        if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; }
        else return 0;
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += extra + 1;
    }
    return 1;
}

static ddpm_status check_text(const char *s, const char *what) {
    if (s && !utf8_ok(s))
        return dd_error(DDPM_ERR_INVALID_ARG, "plot: %s is not valid UTF-8 text of at most %d bytes",
                        what, PLOT_MAX_TEXT);
    return DDPM_OK;
}

static ddpm_status validate_plot(const ddpm_plot *p, int *w, int *h) {
    ddpm_status st;
    if (!p) return dd_error(DDPM_ERR_INVALID_ARG, "plot: the plot description is NULL");
    *w = p->width ? p->width : PLOT_DEFAULT_W;
    *h = p->height ? p->height : PLOT_DEFAULT_H;
    if (*w < PLOT_MIN_W || *w > PLOT_MAX_SIDE || *h < PLOT_MIN_H || *h > PLOT_MAX_SIDE)
        return dd_error(DDPM_ERR_INVALID_ARG, "plot: size %d x %d is out of range (width %d..%d, height %d..%d)",
                        *w, *h, PLOT_MIN_W, PLOT_MAX_SIDE, PLOT_MIN_H, PLOT_MAX_SIDE);
    if (p->nseries < 1 || p->nseries > PLOT_MAX_SERIES || !p->series)
        return dd_error(DDPM_ERR_INVALID_ARG, "plot: needs 1..%d series (got %d%s)", PLOT_MAX_SERIES,
                        p->nseries, p->series ? "" : ", series is NULL");
    if (!isfinite(p->xmin) || !isfinite(p->xmax) || !isfinite(p->ymin) || !isfinite(p->ymax))
        return dd_error(DDPM_ERR_INVALID_ARG, "plot: axis ranges must be finite");
    if (p->xmin > p->xmax || p->ymin > p->ymax)
        return dd_error(DDPM_ERR_INVALID_ARG, "plot: axis range [%g, %g] x [%g, %g] has min > max",
                        p->xmin, p->xmax, p->ymin, p->ymax);
    if (!isfinite(p->xmax - p->xmin) || !isfinite(p->ymax - p->ymin))
        return dd_error(DDPM_ERR_INVALID_ARG, "plot: axis range is too wide to draw");
    if ((st = check_text(p->title, "title")) || (st = check_text(p->xlabel, "xlabel")) ||
        (st = check_text(p->ylabel, "ylabel")))
        return st;
    for (int i = 0; i < p->nseries; i++) {
        const ddpm_plot_series *s = &p->series[i];
        if (s->n < 1 || s->n > PLOT_MAX_POINTS || !s->x || !s->y)
            return dd_error(DDPM_ERR_INVALID_ARG, "plot: series %d needs 1..%d points with x and y (got n = %d%s)",
                            i, PLOT_MAX_POINTS, s->n, (!s->x || !s->y) ? ", NULL data" : "");
        for (int j = 0; j < s->n; j++)
            if (!isfinite(s->x[j]) || !isfinite(s->y[j]))
                return dd_error(DDPM_ERR_INVALID_ARG, "plot: series %d point %d (%g, %g) is not finite",
                                i, j, s->x[j], s->y[j]);
        int neg = s->rgb[0] < 0 && s->rgb[1] < 0 && s->rgb[2] < 0;
        for (int c = 0; c < 3 && !neg; c++)
            if (!(s->rgb[c] >= 0 && s->rgb[c] <= 1))
                return dd_error(DDPM_ERR_INVALID_ARG,
                                "plot: series %d colour (%g, %g, %g) must be in 0..1 (all negative = automatic)",
                                i, s->rgb[0], s->rgb[1], s->rgb[2]);
        if ((st = check_text(s->label, "a series label"))) return st;
    }
    return DDPM_OK;
}

/* ------------------------------------------------------------------------------- axes and ticks */

/* Heckbert's "nice numbers" (Graphics Gems, 1990): 1, 2, 5 or 10 times a power of ten near x. */
static double nice_num(double x, int round_) {
    double e = floor(log10(x)), f = x / pow(10.0, e), nf;
    if (round_) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10.0, e);
}

/* Ticks for [lo, hi]: fixed ranges are kept; automatic ones grow to the enclosing ticks. */
static void axis_setup(plot_axis *a, double lo, double hi, int automatic, double length_px, double px_per_tick) {
    int target = (int)(length_px / px_per_tick);
    if (target < 3) target = 3;
    if (target > 10) target = 10;
    if (hi - lo <= 0 || hi - lo < 1e-12 * fmax(fabs(lo), fabs(hi))) {
        double d = fabs(lo) > 0 ? 0.5 * fabs(lo) : 1.0;
        lo -= d;
        hi += d;
    }
    double step = nice_num(nice_num(hi - lo, 0) / (target - 1), 1);
    if (automatic) {
        lo = floor(lo / step + 1e-9) * step;
        hi = ceil(hi / step - 1e-9) * step;
    }
    a->lo = lo;
    a->hi = hi;
    a->step = step;
    a->decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    a->use_g = a->decimals > 8 || fmax(fabs(lo), fabs(hi)) >= 1e7;
}

/* The tick values k * step inside [lo, hi], as the integer range k0..k1. */
static void axis_range(const plot_axis *a, double *k0, double *k1) {
    *k0 = ceil(a->lo / a->step - 1e-9);
    *k1 = floor(a->hi / a->step + 1e-9);
    if (*k1 - *k0 > 100) *k1 = *k0 + 100;
}

/* Tick label with a typographic minus sign (U+2212) and no "-0". */
static void axis_label(const plot_axis *a, double v, char *buf, size_t size) {
    char tmp[64];
    if (fabs(v) < a->step * 1e-9) v = 0;
    if (a->use_g) snprintf(tmp, sizeof tmp, "%.6g", v);
    else snprintf(tmp, sizeof tmp, "%.*f", a->decimals, v);
    if (tmp[0] == '-') snprintf(buf, size, "\xE2\x88\x92%s", tmp + 1);
    else snprintf(buf, size, "%s", tmp);
}

/* ------------------------------------------------------------------------------- text helpers */

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, PLOT_FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* Draws s with its box anchored at (x, y): ax 0/0.5/1 = left/centre/right, ay 0/0.5/1 = top/middle/bottom
   of the font's ascent + descent, so labels of one row share a baseline. */
static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_width(cr, s);
    cairo_move_to(cr, x - ax * w, y + fe.ascent - ay * (fe.ascent + fe.descent));
    cairo_show_text(cr, s);
}

/* Centre of a text of width w placed at cx, moved so that it stays inside [lo, hi]. */
static double clamp_centre(double cx, double w, double lo, double hi) {
    if (cx + 0.5 * w > hi) cx = hi - 0.5 * w;
    if (cx - 0.5 * w < lo) cx = lo + 0.5 * w;
    return cx;
}

/* Selects the font at `size`, shrunk (down to 6 px) until s is at most `avail` wide. */
static void set_font_fit(cairo_t *cr, const char *s, double size, int bold, double avail) {
    set_font(cr, size, bold);
    double w = text_width(cr, s);
    if (w > avail && w > 0) set_font(cr, fmax(6.0, size * avail / w), bold);
}

static void font_options(cairo_t *cr) {
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
}

/* ------------------------------------------------------------------------------- surfaces */

static ddpm_status cairo_failure(cairo_status_t cs, const char *what) {
    if (cs == CAIRO_STATUS_NO_MEMORY) return dd_error(DDPM_ERR_NOMEM, "%s: out of memory in cairo", what);
    return dd_error(DDPM_ERR_INTERNAL, "%s: cairo failed: %s", what, cairo_status_to_string(cs));
}

/* Copies an ARGB32 surface (premultiplied, composited over white) into out with `channels` 1 or 3. */
static ddpm_status surface_to_image(cairo_surface_t *surf, int channels, ddpm_image *out) {
    int w = cairo_image_surface_get_width(surf), h = cairo_image_surface_get_height(surf);
    int stride = cairo_image_surface_get_stride(surf);
    ddpm_image img;
    memset(&img, 0, sizeof img);
    ddpm_status st = ddpm_image_alloc(&img, w, h, channels);
    if (st != DDPM_OK) return st;
    cairo_surface_flush(surf);
    const unsigned char *data = cairo_image_surface_get_data(surf);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(data + (size_t)y * (size_t)stride);
        uint8_t *o = img.pixels + (size_t)y * (size_t)w * (size_t)channels;
        for (int x = 0; x < w; x++) {
            uint32_t v = row[x];
            unsigned a = v >> 24, white = 255 - a;
            unsigned r = ((v >> 16) & 255) + white, g = ((v >> 8) & 255) + white, b = (v & 255) + white;
            if (channels == 3) {
                o[3 * x] = (uint8_t)r;
                o[3 * x + 1] = (uint8_t)g;
                o[3 * x + 2] = (uint8_t)b;
            } else {
                o[x] = (uint8_t)((r * 299 + g * 587 + b * 114 + 500) / 1000);
            }
        }
    }
    *out = img;
    return DDPM_OK;
}

/* ------------------------------------------------------------------------------- line plot */

typedef struct {
    const ddpm_plot *p;
    int w, h;
    double f;                      /* size factor against the default 900 x 560 */
    double lw;                     /* series line width (2 px at the default size) */
    double title_fs, label_fs, tick_fs, legend_fs;
    plot_rect area;                /* the data rectangle */
    plot_axis ax, ay;
    int nlegend;                   /* series with a label */
    double leg_w, leg_h, leg_row, leg_pad, leg_sample;
    double leg_x, leg_y;           /* legend box top-left */
} plot_layout;

static void series_rgb(const ddpm_plot_series *s, int i, double rgb[3]) {
    int autoc = s->rgb[0] < 0 && s->rgb[1] < 0 && s->rgb[2] < 0;
    for (int c = 0; c < 3; c++) rgb[c] = autoc ? palette[i % 10][c] : s->rgb[c];
}

static double map_x(const plot_layout *L, double v) {
    return L->area.x0 + (v - L->ax.lo) / (L->ax.hi - L->ax.lo) * (L->area.x1 - L->area.x0);
}
static double map_y(const plot_layout *L, double v) {
    return L->area.y1 - (v - L->ay.lo) / (L->ay.hi - L->ay.lo) * (L->area.y1 - L->area.y0);
}

static void data_extent(const ddpm_plot *p, int yaxis, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < p->nseries; i++)
        for (int j = 0; j < p->series[i].n; j++) {
            double v = yaxis ? p->series[i].y[j] : p->series[i].x[j];
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
}

/* Places the data rectangle for a given right margin, then both axes. */
static void layout_area(cairo_t *cr, plot_layout *L, double right) {
    const ddpm_plot *p = L->p;
    double f = L->f, tick_len = 5 * f, gap = 6 * f, outer = 14 * f;
    double top = p->title ? outer + L->title_fs * 2.0 : outer + L->tick_fs;
    double bottom = outer + tick_len + gap + L->tick_fs * 1.3 + (p->xlabel ? L->label_fs * 1.9 : 0);
    double y0 = floor(top), y1 = floor(L->h - bottom);
    double lo, hi;
    int autoy = p->ymin == p->ymax, autox = p->xmin == p->xmax;
    if (autoy) data_extent(p, 1, &lo, &hi); else { lo = p->ymin; hi = p->ymax; }
    axis_setup(&L->ay, lo, hi, autoy, y1 - y0, 60 * f);
    /* the widest y tick label decides the left margin */
    set_font(cr, L->tick_fs, 0);
    double k0, k1, wmax = 0;
    char buf[80];
    axis_range(&L->ay, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        axis_label(&L->ay, k * L->ay.step, buf, sizeof buf);
        wmax = fmax(wmax, text_width(cr, buf));
    }
    double left = outer + (p->ylabel ? L->label_fs * 1.9 : 0) + wmax + gap + tick_len;
    if (autox) data_extent(p, 0, &lo, &hi); else { lo = p->xmin; hi = p->xmax; }
    double x0 = ceil(left), x1 = floor(L->w - right);
    axis_setup(&L->ax, lo, hi, autox, x1 - x0, 110 * f);
    L->area.x0 = x0;
    L->area.x1 = x1;
    L->area.y0 = y0;
    L->area.y1 = y1;
}

/* How many curve samples (every 2 px along each segment, at most `limit`) fall in the box (x, y, w, h). */
static long box_hits_curves(const plot_layout *L, double bx, double by, double bw, double bh, long limit) {
    long hits = 0;
    double m = 3 * L->lw + 2;
    bx -= m; by -= m; bw += 2 * m; bh += 2 * m;
    for (int i = 0; i < L->p->nseries; i++) {
        const ddpm_plot_series *s = &L->p->series[i];
        double px = map_x(L, s->x[0]), py = map_y(L, s->y[0]);
        for (int j = 0; j < s->n; j++) {
            double qx = map_x(L, s->x[j]), qy = map_y(L, s->y[j]);
            double len = hypot(qx - px, qy - py);
            int steps = len > 2 ? (int)fmin(ceil(len / 2), 100000) : 1;
            for (int k = 0; k <= steps; k++) {
                double u = (double)k / steps, x = px + u * (qx - px), y = py + u * (qy - py);
                if (x >= bx && x <= bx + bw && y >= by && y <= by + bh && ++hits >= limit) return hits;
            }
            px = qx;
            py = qy;
        }
    }
    return hits;
}

static void layout_plot(cairo_t *cr, plot_layout *L) {
    const ddpm_plot *p = L->p;
    double f = L->f;
    L->lw = 2 * f;
    /* text stays readable on small plots */
    L->title_fs = fmax(15, 18 * f);
    L->label_fs = fmax(12, 14 * f);
    L->tick_fs = fmax(11, 12 * f);
    L->legend_fs = fmax(11, 13 * f);
    /* legend size */
    L->nlegend = 0;
    double tw = 0;
    for (int i = 0; i < p->nseries; i++)
        if (p->series[i].label && p->series[i].label[0]) L->nlegend++;
    double avail_h = L->h - 40 * f;
    for (;;) {
        L->leg_row = L->legend_fs * 1.55;
        L->leg_pad = L->legend_fs * 0.7;
        if (L->nlegend * L->leg_row + 2 * L->leg_pad <= avail_h || L->legend_fs <= 8) break;
        L->legend_fs *= 0.9;
    }
    set_font(cr, L->legend_fs, 0);
    for (int i = 0; i < p->nseries; i++)
        if (p->series[i].label && p->series[i].label[0]) tw = fmax(tw, text_width(cr, p->series[i].label));
    L->leg_sample = 2.4 * L->legend_fs;
    L->leg_w = ceil(2 * L->leg_pad + L->leg_sample + 0.6 * L->legend_fs + tw);
    L->leg_h = ceil(2 * L->leg_pad + L->nlegend * L->leg_row - 0.2 * L->legend_fs);
    /* the right margin must hold half of the last x tick label */
    set_font(cr, L->tick_fs, 0);
    double right = 24 * f;
    layout_area(cr, L, right);
    if (L->nlegend == 0) return;
    /* inside: the first empty corner; otherwise outside, right of the data rectangle; on a plot too
       small for that, the corner the curves cross least */
    double inset = 10 * f;
    plot_rect a = L->area;
    double cx[4] = {a.x1 - inset - L->leg_w, a.x0 + inset, a.x1 - inset - L->leg_w, a.x0 + inset};
    double cy[4] = {a.y0 + inset, a.y0 + inset, a.y1 - inset - L->leg_h, a.y1 - inset - L->leg_h};
    if (L->leg_w < (a.x1 - a.x0) * 0.45 && L->leg_h < (a.y1 - a.y0) * 0.6)
        for (int c = 0; c < 4; c++)
            if (box_hits_curves(L, cx[c], cy[c], L->leg_w, L->leg_h, 1) == 0) {
                L->leg_x = cx[c];
                L->leg_y = cy[c];
                return;
            }
    layout_area(cr, L, L->leg_w + 2 * 14 * f);
    L->leg_x = L->area.x1 + 14 * f;
    L->leg_y = L->area.y0;
    if (L->area.x1 - L->area.x0 >= 0.5 * L->w) return;
    layout_area(cr, L, right);
    long best = -1;
    for (int c = 0; c < 4; c++) {
        long hits = box_hits_curves(L, cx[c], cy[c], L->leg_w, L->leg_h, 1L << 40);
        if (best < 0 || hits < best) {
            best = hits;
            L->leg_x = cx[c];
            L->leg_y = cy[c];
        }
    }
}

static void set_dash(cairo_t *cr, int dashed, double f) {
    if (dashed) {
        double d[2] = {7 * f, 4.5 * f};
        cairo_set_dash(cr, d, 2, 0);
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    } else {
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    }
}

static void draw_axes(cairo_t *cr, const plot_layout *L) {
    const ddpm_plot *p = L->p;
    const plot_rect *a = &L->area;
    double f = L->f, tick_len = 5 * f, gap = 6 * f, outer = 14 * f;
    double k0, k1;
    char buf[80];
    cairo_set_line_width(cr, 1);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    /* light grid */
    cairo_set_source_rgb(cr, 0.90, 0.90, 0.90);
    axis_range(&L->ax, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        double x = floor(map_x(L, k * L->ax.step)) + 0.5;
        cairo_move_to(cr, x, a->y0);
        cairo_line_to(cr, x, a->y1);
    }
    axis_range(&L->ay, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        double y = floor(map_y(L, k * L->ay.step)) + 0.5;
        cairo_move_to(cr, a->x0, y);
        cairo_line_to(cr, a->x1, y);
    }
    cairo_stroke(cr);
    /* frame, ticks and tick labels */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, a->x0 + 0.5, a->y0 + 0.5, a->x1 - a->x0 - 1, a->y1 - a->y0 - 1);
    set_font(cr, L->tick_fs, 0);
    axis_range(&L->ax, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        double x = floor(map_x(L, k * L->ax.step)) + 0.5;
        cairo_move_to(cr, x, a->y1);
        cairo_line_to(cr, x, a->y1 + tick_len);
    }
    axis_range(&L->ay, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        double y = floor(map_y(L, k * L->ay.step)) + 0.5;
        cairo_move_to(cr, a->x0, y);
        cairo_line_to(cr, a->x0 - tick_len, y);
    }
    cairo_stroke(cr);
    axis_range(&L->ax, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        axis_label(&L->ax, k * L->ax.step, buf, sizeof buf);
        text_at(cr, buf, map_x(L, k * L->ax.step), a->y1 + tick_len + gap * 0.6, 0.5, 0);
    }
    axis_range(&L->ay, &k0, &k1);
    for (double k = k0; k <= k1; k++) {
        axis_label(&L->ay, k * L->ay.step, buf, sizeof buf);
        text_at(cr, buf, a->x0 - tick_len - gap, map_y(L, k * L->ay.step), 1, 0.5);
    }
    /* axis labels and title */
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (p->xlabel) {
        set_font_fit(cr, p->xlabel, L->label_fs, 0, L->w - 2 * outer);
        double cx = clamp_centre(0.5 * (a->x0 + a->x1), text_width(cr, p->xlabel), outer, L->w - outer);
        text_at(cr, p->xlabel, cx, L->h - outer, 0.5, 1);
    }
    if (p->ylabel) {
        set_font_fit(cr, p->ylabel, L->label_fs, 0, L->h - 2 * outer);
        double cy = clamp_centre(0.5 * (a->y0 + a->y1), text_width(cr, p->ylabel), outer, L->h - outer);
        cairo_save(cr);
        cairo_translate(cr, outer, cy);
        cairo_rotate(cr, -PLOT_PI / 2);
        text_at(cr, p->ylabel, 0, 0, 0.5, 0);
        cairo_restore(cr);
    }
    if (p->title) {
        set_font_fit(cr, p->title, L->title_fs, 1, L->w - 2 * outer);
        double cx = clamp_centre(0.5 * (a->x0 + a->x1), text_width(cr, p->title), outer, L->w - outer);
        text_at(cr, p->title, cx, outer * 0.8, 0.5, 0);
    }
}

static void draw_series(cairo_t *cr, const plot_layout *L) {
    const plot_rect *a = &L->area;
    double m = L->lw;
    cairo_save(cr);
    cairo_rectangle(cr, a->x0 - m, a->y0 - m, a->x1 - a->x0 + 2 * m, a->y1 - a->y0 + 2 * m);
    cairo_clip(cr);
    cairo_set_line_width(cr, L->lw);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int i = 0; i < L->p->nseries; i++) {
        const ddpm_plot_series *s = &L->p->series[i];
        double rgb[3];
        series_rgb(s, i, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        if (s->n == 1) {
            cairo_arc(cr, map_x(L, s->x[0]), map_y(L, s->y[0]), 1.5 * L->lw, 0, 2 * PLOT_PI);
            cairo_fill(cr);
            continue;
        }
        set_dash(cr, s->dashed, L->f);
        cairo_move_to(cr, map_x(L, s->x[0]), map_y(L, s->y[0]));
        for (int j = 1; j < s->n; j++) cairo_line_to(cr, map_x(L, s->x[j]), map_y(L, s->y[j]));
        cairo_stroke(cr);
    }
    cairo_restore(cr);
}

static void draw_legend(cairo_t *cr, const plot_layout *L) {
    if (L->nlegend == 0) return;
    double x = floor(L->leg_x) + 0.5, y = floor(L->leg_y) + 0.5, r = 4 * L->f;
    double w = L->leg_w, h = L->leg_h;
    cairo_new_sub_path(cr);
    cairo_arc(cr, x + w - r, y + r, r, -PLOT_PI / 2, 0);
    cairo_arc(cr, x + w - r, y + h - r, r, 0, PLOT_PI / 2);
    cairo_arc(cr, x + r, y + h - r, r, PLOT_PI / 2, PLOT_PI);
    cairo_arc(cr, x + r, y + r, r, PLOT_PI, 1.5 * PLOT_PI);
    cairo_close_path(cr);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 1);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_stroke(cr);
    set_font(cr, L->legend_fs, 0);
    double row_y = y + L->leg_pad + 0.5 * L->legend_fs;
    for (int i = 0; i < L->p->nseries; i++) {
        const ddpm_plot_series *s = &L->p->series[i];
        if (!s->label || !s->label[0]) continue;
        double rgb[3];
        series_rgb(s, i, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_set_line_width(cr, L->lw);
        set_dash(cr, s->dashed, L->f);
        double sx = x + L->leg_pad;
        cairo_move_to(cr, sx, row_y);
        cairo_line_to(cr, sx + L->leg_sample, row_y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, s->label, sx + L->leg_sample + 0.6 * L->legend_fs, row_y, 0, 0.5);
        row_y += L->leg_row;
    }
}

ddpm_status ddpm_plot_render(const ddpm_plot *p, ddpm_image *out) {
    int w = 0, h = 0;
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "plot: output image is NULL");
    ddpm_status st = validate_plot(p, &w, &h);
    if (st != DDPM_OK) return st;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        st = cairo_failure(cairo_status(cr), "plot");
        goto done;
    }
    plot_layout L;
    memset(&L, 0, sizeof L);
    L.p = p;
    L.w = w;
    L.h = h;
    L.f = fmin(w / (double)PLOT_DEFAULT_W, h / (double)PLOT_DEFAULT_H);
    if (L.f < 0.6) L.f = 0.6;
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_BEST);
    font_options(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    layout_plot(cr, &L);
    draw_axes(cr, &L);
    draw_series(cr, &L);
    draw_legend(cr, &L);
    cairo_surface_flush(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        st = cairo_failure(cairo_status(cr), "plot");
        goto done;
    }
    st = surface_to_image(surf, 3, out);
done:
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return st;
}

ddpm_status ddpm_plot_lines(const char *path, const ddpm_plot *p) {
    if (!path || !path[0]) return dd_error(DDPM_ERR_INVALID_ARG, "plot: output path is empty");
    ddpm_image img;
    memset(&img, 0, sizeof img);
    ddpm_status st = ddpm_plot_render(p, &img);
    if (st != DDPM_OK) return st;
    st = ddpm_png_write(path, &img, p->text);
    ddpm_image_free(&img);
    return st;
}

/* ------------------------------------------------------------------------------- image strip */

/* Layout: N cells of (W*scale) x (H*scale) in a row, STRIP_PAD white pixels around and between them,
   then (with captions) a caption band under the cells: width = N*W*scale + (N+1)*STRIP_PAD. */
ddpm_status ddpm_schedule_plot(const char *path, const ddpm_diffusion *const *d, const char *const *names, int n,
                               int width, int height, const char *const *text) {
    if (!path || !d || !names || n < 1 || 2 * n > PLOT_MAX_SERIES)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_schedule_plot: need a path and 1..%d named diffusions",
                        PLOT_MAX_SERIES / 2);
    for (int s = 0; s < n; s++)
        if (!d[s] || !names[s] || d[s]->T != d[0]->T)
            return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_schedule_plot: diffusion %d is NULL or has another T", s);
    const int T = d[0]->T;
    double *x = dd_alloc(sizeof(double) * (size_t)T);
    ddpm_plot_series series[PLOT_MAX_SERIES];
    char labels[PLOT_MAX_SERIES][300], title[64];
    if (!x) return dd_error(DDPM_ERR_NOMEM, "out of memory");
    for (int t = 0; t < T; t++) x[t] = t;
    memset(series, 0, sizeof series);
    for (int s = 0; s < n; s++) {
        for (int k = 0; k < 2; k++) {
            ddpm_plot_series *ps = &series[2 * s + k];
            /* U+221A square root, U+1FB1 alpha with macron, U+2212 minus */
            snprintf(labels[2 * s + k], sizeof labels[0], "%s %s", names[s],
                     k == 0 ? "\xE2\x88\x9A\xE1\xBE\xB1" : "\xE2\x88\x9A(1\xE2\x88\x92\xE1\xBE\xB1)");
            ps->label = labels[2 * s + k];
            ps->x = x;
            ps->y = k == 0 ? d[s]->sqrt_alphas_cumprod : d[s]->sqrt_one_minus_alphas_cumprod;
            ps->n = T;
            ddpm_plot_palette(s, ps->rgb);   /* both curves of a schedule in its colour */
            ps->dashed = k;
        }
    }
    snprintf(title, sizeof title, "Noise schedules (T = %d)", T);
    ddpm_plot p;
    memset(&p, 0, sizeof p);
    p.title = title;
    p.xlabel = "timestep t";
    p.ylabel = "scale of x\xE2\x82\x80 (solid) and of \xCE\xB5 (dashed)";
    p.width = width;
    p.height = height;
    p.ymin = 0;   /* x automatic: 0 .. T-1 rounded out to the enclosing ticks */
    p.ymax = 1;
    p.series = series;
    p.nseries = 2 * n;
    p.text = text;
    ddpm_status st = ddpm_plot_lines(path, &p);
    dd_free(x);
    return st;
}

ddpm_status ddpm_image_strip(ddpm_image *out, const float *x, int N, int C, int H, int W,
                             const char *const *captions, int scale) {
    if (!out || !x) return dd_error(DDPM_ERR_INVALID_ARG, "image strip: %s is NULL", out ? "x" : "out");
    if (N < 1 || (C != 1 && C != 3) || H < 1 || W < 1 || scale < 1 || scale > 64)
        return dd_error(DDPM_ERR_INVALID_ARG,
                        "image strip: bad shape N=%d C=%d H=%d W=%d scale=%d (need N >= 1, C 1 or 3, "
                        "H, W >= 1, scale 1..64)", N, C, H, W, scale);
    int64_t cw = (int64_t)W * scale, ch = (int64_t)H * scale;
    int64_t width = (int64_t)N * cw + (int64_t)(N + 1) * STRIP_PAD;
    int has_caps = 0;
    if (captions)
        for (int i = 0; i < N; i++)
            if (captions[i]) {
                if (!utf8_ok(captions[i]))
                    return dd_error(DDPM_ERR_INVALID_ARG, "image strip: caption %d is not valid UTF-8 text of "
                                    "at most %d bytes", i, PLOT_MAX_TEXT);
                has_caps = 1;
            }
    /* caption font: proportional to the cell, shrunk until the widest caption fits its column */
    double fs = fmin(fmax(0.14 * (double)cw, 11.0), 20.0);
    int64_t band = has_caps ? (int64_t)ceil(fs * 1.9) : STRIP_PAD;
    int64_t height = STRIP_PAD + ch + band;
    if (width > STRIP_MAX_SIDE || height > STRIP_MAX_SIDE || width * height > STRIP_MAX_PIXELS)
        return dd_error(DDPM_ERR_INVALID_ARG, "image strip: %lld x %lld pixels is too large (at most %d a side)",
                        (long long)width, (long long)height, STRIP_MAX_SIDE);
    size_t count = (size_t)N * (size_t)C * (size_t)H * (size_t)W;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return dd_error(DDPM_ERR_NUMERIC, "image strip: x[%zu] = %g is not finite", i, (double)x[i]);

    ddpm_status st = DDPM_OK;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)width, (int)height);
    cairo_t *cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        st = cairo_failure(cairo_status(cr), "image strip");
        goto done;
    }
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_surface_flush(surf);
    unsigned char *data = cairo_image_surface_get_data(surf);
    int stride = cairo_image_surface_get_stride(surf);
    size_t plane = (size_t)H * (size_t)W;
    for (int n = 0; n < N; n++) {
        const float *img = x + (size_t)n * (size_t)C * plane;   /* [C, H, W] */
        int64_t ox = STRIP_PAD + (int64_t)n * (cw + STRIP_PAD);
        for (int64_t py = 0; py < ch; py++) {
            uint32_t *row = (uint32_t *)(void *)(data + (size_t)(STRIP_PAD + py) * (size_t)stride);
            size_t src_row = (size_t)(py / scale) * (size_t)W;
            for (int64_t px = 0; px < cw; px++) {
                size_t s = src_row + (size_t)(px / scale);
                uint32_t rgb[3];
                for (int c = 0; c < 3; c++) {
                    double v = img[(C == 3 ? (size_t)c : 0) * plane + s];
                    v = v < -1 ? -1 : v > 1 ? 1 : v;
                    rgb[c] = (uint32_t)floor((v + 1.0) * 127.5 + 0.5);
                }
                row[ox + px] = 0xFF000000u | (rgb[0] << 16) | (rgb[1] << 8) | rgb[2];
            }
        }
    }
    cairo_surface_mark_dirty(surf);
    if (has_caps) {
        font_options(cr);
        set_font(cr, fs, 0);
        double wmax = 0, avail = (double)cw + STRIP_PAD - 2;
        for (int i = 0; i < N; i++)
            if (captions[i]) wmax = fmax(wmax, text_width(cr, captions[i]));
        if (wmax > avail) set_font(cr, fmax(6.0, fs * avail / wmax), 0);
        cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
        for (int i = 0; i < N; i++) {
            if (!captions[i]) continue;
            double cx = STRIP_PAD + (double)i * (double)(cw + STRIP_PAD) + 0.5 * (double)cw;
            text_at(cr, captions[i], cx, (double)(STRIP_PAD + ch) + 0.5 * (double)band, 0.5, 0.5);
        }
    }
    cairo_surface_flush(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        st = cairo_failure(cairo_status(cr), "image strip");
        goto done;
    }
    st = surface_to_image(surf, C, out);
done:
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return st;
}

int ddpm_image_strip_scale(int size) {
    int k = (100 + size / 2) / (size > 0 ? size : 1);
    return k < 1 ? 1 : k > 64 ? 64 : k;
}

ddpm_status ddpm_image_trajectory(ddpm_image *out, const ddpm_trajectory *tr, int C, int H, int W) {
    if (!out) return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_trajectory: out is NULL");
    memset(out, 0, sizeof *out);
    if (!tr || !tr->x || !tr->x0 || tr->nimg < 1 || tr->nframes < 1 || tr->nframes > DDPM_TRAJECTORY_MAX_FRAMES ||
        tr->D != (int64_t)C * H * W)
        return dd_error(DDPM_ERR_INVALID_ARG, "ddpm_image_trajectory: no recorded trajectory of [%d, %d, %d] images",
                        C, H, W);
    const int F = tr->nframes, rows_n = 2 * tr->nimg, scale = ddpm_image_strip_scale(H);
    ddpm_image *rows = dd_calloc((size_t)rows_n, sizeof(ddpm_image));
    if (!rows) return DDPM_ERR_NOMEM;
    char capx[DDPM_TRAJECTORY_MAX_FRAMES][32], cap0[DDPM_TRAJECTORY_MAX_FRAMES][40];
    const char *px[DDPM_TRAJECTORY_MAX_FRAMES], *p0[DDPM_TRAJECTORY_MAX_FRAMES];
    for (int j = 0; j < F; j++) {
        snprintf(capx[j], sizeof capx[j], "t = %lld", (long long)tr->t[j]);
        snprintf(cap0[j], sizeof cap0[j], "x\xcc\x82\xe2\x82\x80 @ %lld", (long long)tr->t[j]);   /* x̂₀ */
        px[j] = capx[j];
        p0[j] = cap0[j];
    }
    ddpm_status st = DDPM_OK;
    for (int i = 0; i < tr->nimg && st == DDPM_OK; i++) {
        size_t off = (size_t)i * (size_t)F * (size_t)tr->D;
        st = ddpm_image_strip(&rows[2 * i], tr->x + off, F, C, H, W, px, scale);
        if (st == DDPM_OK) st = ddpm_image_strip(&rows[2 * i + 1], tr->x0 + off, F, C, H, W, p0, scale);
    }
    if (st == DDPM_OK) st = ddpm_image_stack(rows, rows_n, out);
    for (int i = 0; i < rows_n; i++) ddpm_image_free(&rows[i]);
    dd_free(rows);
    return st;
}
