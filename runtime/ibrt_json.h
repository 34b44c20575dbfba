/*
 * ibrt_json.h: additions to the JSON builder of ibrt.h.  The builder keeps
 * the separators itself (a comma before every value or key but the first
 * of its container), prints numbers with %.17g so that they read back to
 * the same double, writes non-finite numbers as null (JSON has no NaN),
 * and escapes '"', '\\' and every control byte (as \n, \t, ... or \u00XX).
 * Bytes >= 0x80 are copied unchanged: callers pass UTF-8.
 */
#ifndef IBRT_JSON_H
#define IBRT_JSON_H

#include "ibrt.h"

void ibrt_json_null(ibrt_json *j);

/* The builder's state, for checkpoints and partial results: its text so
 * far and whether the next value needs a separator.  ibrt_json_restore
 * replaces j's state with a saved one; ibrt_json_clone copies j (then the
 * copy can be closed and written while j goes on). */
bool ibrt_json_need_comma(const ibrt_json *j);
void ibrt_json_restore(ibrt_json *j, const char *text, bool need_comma);
ibrt_json *ibrt_json_clone(const ibrt_json *j);

#endif
