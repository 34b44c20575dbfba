/*
 * builtin.c: the table of built-in names (ibc.h), generated from
 * runtime/ibrt_builtins.def with its X-macros, so that the .def stays the
 * one list: a name, its class (function, operator, distribution, data
 * generator), and what each class needs (scaling kind, arity, keyword
 * arguments).  sema resolves every call to an ibc_builtin with
 * ibc_builtin_lookup; later phases compare enumerators, never names.
 */
#include "ibc.h"

#include <string.h>

enum { HOMOG1 = IBC_FK_HOMOG1, LINEAR = IBC_FK_LINEAR, NONHOMOG = IBC_FK_NONHOMOG, CONST = IBC_FK_CONST };

const ibc_builtin_info ibc_builtins[IBC_B_COUNT] = {
    [IBC_B_NONE] = { "", IBC_BC_NONE, IBC_FK_HOMOG1, 0, NULL, NULL },
#define IBRT_FUNC(n, k, a, d) [IBC_B_##n] = { #n, IBC_BC_FUNC, (ibc_func_kind)k, a, NULL, d },
#define IBRT_OPERATOR(n, a, d) [IBC_B_##n] = { #n, IBC_BC_OPERATOR, IBC_FK_LINEAR, a, NULL, d },
#define IBRT_DIST(n, a, d) [IBC_B_##n] = { #n, IBC_BC_DIST, IBC_FK_HOMOG1, a, NULL, d },
#define IBRT_GENERATOR(n, k, d) [IBC_B_##n] = { #n, IBC_BC_GENERATOR, IBC_FK_HOMOG1, 0, k, d },
#include "ibrt_builtins.def"
};

ibc_builtin ibc_builtin_lookup(const char *name)
{
    if (!name)
        return IBC_B_NONE;
    for (int b = IBC_B_NONE + 1; b < IBC_B_COUNT; b++)
        if (!strcmp(ibc_builtins[b].name, name))
            return (ibc_builtin)b;
    return IBC_B_NONE;
}

ibc_builtin_class ibc_builtin_class_of(ibc_builtin b)
{
    return b > IBC_B_NONE && b < IBC_B_COUNT ? ibc_builtins[b].cls : IBC_BC_NONE;
}
