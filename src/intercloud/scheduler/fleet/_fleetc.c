/* Compiled hot path of FleetState's whole-gang bookkeeping (state.py).
 *
 * Each function does, on the same Python lists, exactly the list operations of the
 * pure-Python method it replaces, in the same order: buckets, positions and counters
 * end up identical, so every decision is the same (tests/scheduler/fleet/
 * test_fleet_state_bulk.py runs both). Optional: when this does not build or import,
 * state.py runs its pure-Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers ------ */

static int need_list(PyObject *o, const char *name) {
    if (!PyList_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a list", name);
        return -1;
    }
    return 0;
}

/* list[i] as a C long (i checked); -1 with an error set on failure (test PyErr) */
static inline long item_long(PyObject *list, Py_ssize_t i) {
    if (i < 0 || i >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return -1;
    }
    return PyLong_AsLong(PyList_GET_ITEM(list, i));
}

static inline int set_long(PyObject *list, Py_ssize_t i, long v) {
    PyObject *o = PyLong_FromLong(v);
    if (o == NULL)
        return -1;
    return PyList_SetItem(list, i, o); /* steals o; checks i */
}

static inline int add_long(PyObject *list, Py_ssize_t i, long dv) {
    long v = item_long(list, i);
    if (v == -1 && PyErr_Occurred())
        return -1;
    return set_long(list, i, v + dv);
}

static inline int append_long(PyObject *list, long v) {
    PyObject *o = PyLong_FromLong(v);
    if (o == NULL)
        return -1;
    int r = PyList_Append(list, o);
    Py_DECREF(o);
    return r;
}

/* the nodes of a sequence as a C array (caller frees) and, when ``keep`` is given, the
 * sequence as a list or tuple whose items are those nodes (caller releases); NULL with
 * an error set */
static long *node_array_keep(PyObject *seq, Py_ssize_t *m, PyObject **keep) {
    PyObject *fast = PySequence_Fast(seq, "nodes must be a sequence");
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    long *out = PyMem_Malloc(sizeof(long) * (size_t)(n > 0 ? n : 1));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsLong(items[i]);
        if (out[i] == -1 && PyErr_Occurred()) {
            PyMem_Free(out);
            Py_DECREF(fast);
            return NULL;
        }
    }
    if (keep != NULL)
        *keep = fast;
    else
        Py_DECREF(fast);
    *m = n;
    return out;
}

static long *node_array(PyObject *seq, Py_ssize_t *m) { return node_array_keep(seq, m, NULL); }

/* swap-remove of ``v`` at position ``pos[v]`` from ``b`` (``pos`` of the moved last
 * element updated; ``pos[v]`` itself left to the caller). The popped object moves into
 * the hole and ``pos[v]``'s object becomes ``pos[last]``: no int is allocated (the
 * lists are large and scattered in memory; fewer objects touched is what counts). */
static inline int swap_remove(PyObject *b, PyObject *pos, long v) {
    if (v < 0 || v >= PyList_GET_SIZE(pos)) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return -1;
    }
    PyObject *iobj = PyList_GET_ITEM(pos, v);
    long i = PyLong_AsLong(iobj);
    if (i == -1 && PyErr_Occurred())
        return -1;
    Py_ssize_t s = PyList_GET_SIZE(b);
    if (s == 0) {
        PyErr_SetString(PyExc_IndexError, "pop from empty list");
        return -1;
    }
    PyObject *last = PyList_GET_ITEM(b, s - 1);
    long lv = PyLong_AsLong(last);
    if (lv == -1 && PyErr_Occurred())
        return -1;
    if (lv != v && (i < 0 || i >= s - 1 || lv < 0 || lv >= PyList_GET_SIZE(pos))) {
        PyErr_SetString(PyExc_IndexError, "bucket position out of range");
        return -1;
    }
    Py_SET_SIZE(b, s - 1); /* popped: its reference is ours now */
    if (lv != v) {
        PyObject *old = PyList_GET_ITEM(b, i);
        PyList_SET_ITEM(b, i, last); /* our reference moves in */
        Py_INCREF(iobj);
        PyObject *oldp = PyList_GET_ITEM(pos, lv);
        PyList_SET_ITEM(pos, lv, iobj);
        Py_DECREF(old);
        Py_DECREF(oldp);
    } else {
        Py_DECREF(last);
    }
    return 0;
}

/* ---------------------------------------------------------------- bulk_level --- */

PyDoc_STRVAR(bulk_level_doc,
"bulk_level(nodes, lvl, pos, bo, bn, new)\n\n"
"The bucket part of FleetState._bulk_level: each node of ``nodes`` in order leaves\n"
"bucket ``bo`` (swap-remove; a tail of ``bo``, last first, is cut at once) with\n"
"``lvl[n] = new``, then all are appended to ``bn`` with their positions in ``pos``.");

static PyObject *bulk_level(PyObject *self, PyObject *args) {
    PyObject *nodes, *lvl, *pos, *bo, *bn;
    long new_lvl;
    if (!PyArg_ParseTuple(args, "OOOOOl", &nodes, &lvl, &pos, &bo, &bn, &new_lvl))
        return NULL;
    if (need_list(lvl, "lvl") || need_list(pos, "pos") || need_list(bo, "bo") ||
        need_list(bn, "bn"))
        return NULL;
    Py_ssize_t m;
    PyObject *seq = NULL;
    long *ns = node_array_keep(nodes, &m, &seq);
    if (ns == NULL)
        return NULL;
    PyObject **objs = PySequence_Fast_ITEMS(seq);
    Py_ssize_t t = PyList_GET_SIZE(bo) - m;
    int tail = t >= 0;
    for (Py_ssize_t i = 0; tail && i < m; i++) {
        PyObject *x = PyList_GET_ITEM(bo, t + i);
        if (x == objs[m - 1 - i])
            continue; /* the very object (picked from this bucket): no int read */
        long v = PyLong_AsLong(x);
        if (v == -1 && PyErr_Occurred())
            goto fail;
        tail = v == ns[m - 1 - i];
    }
    if (tail) {
        if (PyList_SetSlice(bo, t, t + m, NULL) < 0)
            goto fail;
        for (Py_ssize_t i = 0; i < m; i++)
            if (set_long(lvl, ns[i], new_lvl) < 0)
                goto fail;
    } else {
        for (Py_ssize_t i = 0; i < m; i++) {
            if (set_long(lvl, ns[i], new_lvl) < 0 || swap_remove(bo, pos, ns[i]) < 0)
                goto fail;
        }
    }
    Py_ssize_t k = PyList_GET_SIZE(bn);
    for (Py_ssize_t i = 0; i < m; i++) {
        /* the node objects themselves join ``bn`` (as ``bn.extend(nodes)``) */
        if (set_long(pos, ns[i], (long)(k + i)) < 0 || PyList_Append(bn, objs[i]) < 0)
            goto fail;
    }
    Py_DECREF(seq);
    PyMem_Free(ns);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    PyMem_Free(ns);
    return NULL;
}

/* ---------------------------------------------------------------- bulk_full ---- */

/* FleetState._dom_jump */
static int dom_jump(PyObject *bs, PyObject *dbpos, PyObject *datl, long p, long d, long old,
                    long new_c) {
    if (old == new_c)
        return 0;
    if (old < 0 || old >= PyList_GET_SIZE(bs) || new_c < 0 || new_c >= PyList_GET_SIZE(bs)) {
        PyErr_SetString(PyExc_IndexError, "domain bucket out of range");
        return -1;
    }
    PyObject *b = PyList_GET_ITEM(bs, old);
    PyObject *nb = PyList_GET_ITEM(bs, new_c);
    if (need_list(b, "domain bucket") || need_list(nb, "domain bucket"))
        return -1;
    if (swap_remove(b, dbpos, d) < 0)
        return -1;
    if (set_long(dbpos, d, (long)PyList_GET_SIZE(nb)) < 0 || append_long(nb, d) < 0)
        return -1;
    long lo = new_c > old ? old + 1 : new_c + 1;
    long hi = new_c > old ? new_c : old;
    long dv = new_c > old ? 1 : -1;
    for (long c = lo; c <= hi; c++) {
        if (c >= PyList_GET_SIZE(datl)) {
            PyErr_SetString(PyExc_IndexError, "datl out of range");
            return -1;
        }
        PyObject *row = PyList_GET_ITEM(datl, c);
        if (need_list(row, "datl row") || add_long(row, p, dv) < 0)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(bulk_full_doc,
"bulk_full(nodes, step, dcount, domain, dfree, dpos, dbuck, dbpos, datl, p)\n\n"
"FleetState._bulk_full: ``nodes`` of pool ``p`` become fully free (``step`` 1) or\n"
"stop being so (-1), in order, each domain's moves once per run of its nodes.\n"
"``domain``: each node's domain, a contiguous int32 array (FleetState.domain).\n"
"``dbuck`` None: the pool's domains are single nodes (counts only).");

/* node ``n``'s domain from the int32 column; -1 with an error set when out of range */
static inline long dom_of(const Py_buffer *v, long n) {
    if (n < 0 || n >= (long)(v->len / 4)) {
        PyErr_SetString(PyExc_IndexError, "node out of range");
        return -1;
    }
    return (long)((const int32_t *)v->buf)[n];
}

static PyObject *bulk_full(PyObject *self, PyObject *args) {
    PyObject *nodes, *dcount, *ndom, *dfree, *dpos, *dbuck, *dbpos, *datl;
    long step, p;
    if (!PyArg_ParseTuple(args, "OlOOOOOOOl", &nodes, &step, &dcount, &ndom, &dfree, &dpos,
                          &dbuck, &dbpos, &datl, &p))
        return NULL;
    if (need_list(dcount, "dcount"))
        return NULL;
    Py_buffer dv;
    if (PyObject_GetBuffer(ndom, &dv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (dv.itemsize != 4 || dv.format == NULL ||
        (strcmp(dv.format, "i") != 0 && strcmp(dv.format, "<i") != 0 &&
         strcmp(dv.format, "=i") != 0)) {
        PyBuffer_Release(&dv);
        PyErr_SetString(PyExc_TypeError, "domain must be a contiguous int32 array");
        return NULL;
    }
    Py_ssize_t m;
    PyObject *seq = NULL;
    long *ns = node_array_keep(nodes, &m, &seq);
    if (ns == NULL) {
        PyBuffer_Release(&dv);
        return NULL;
    }
    PyObject **objs = PySequence_Fast_ITEMS(seq);
    if (dbuck == Py_None) {
        for (Py_ssize_t i = 0; i < m; i++) {
            long d = dom_of(&dv, ns[i]);
            if ((d == -1 && PyErr_Occurred()) || add_long(dcount, d, step) < 0)
                goto fail;
        }
        PyBuffer_Release(&dv);
        Py_DECREF(seq);
        PyMem_Free(ns);
        Py_RETURN_NONE;
    }
    if (need_list(dfree, "dfree") || need_list(dpos, "dpos") || need_list(dbuck, "dbuck") ||
        need_list(dbpos, "dbpos") || need_list(datl, "datl"))
        goto fail;
    Py_ssize_t a = 0;
    while (a < m) {
        long d = dom_of(&dv, ns[a]);
        if (d == -1 && PyErr_Occurred())
            goto fail;
        Py_ssize_t b = a + 1;
        for (; b < m; b++) {
            long e = dom_of(&dv, ns[b]);
            if (e == -1 && PyErr_Occurred())
                goto fail;
            if (e != d)
                break;
        }
        long k = (long)(b - a);
        long c0 = item_long(dcount, d);
        if (c0 == -1 && PyErr_Occurred())
            goto fail;
        if (set_long(dcount, d, c0 + step * k) < 0)
            goto fail;
        if (d < 0 || d >= PyList_GET_SIZE(dfree)) {
            PyErr_SetString(PyExc_IndexError, "domain out of range");
            goto fail;
        }
        PyObject *f = PyList_GET_ITEM(dfree, d);
        if (need_list(f, "dfree[d]"))
            goto fail;
        Py_ssize_t t = PyList_GET_SIZE(f);
        if (step > 0) {
            for (Py_ssize_t i = a; i < b; i++)
                if (set_long(dpos, ns[i], (long)(t + i - a)) < 0 || PyList_Append(f, objs[i]) < 0)
                    goto fail;
        } else {
            int tail = t >= k;
            for (Py_ssize_t i = 0; tail && i < k; i++) {
                PyObject *x = PyList_GET_ITEM(f, t - k + i);
                if (x == objs[b - 1 - i])
                    continue;
                long v = PyLong_AsLong(x);
                if (v == -1 && PyErr_Occurred())
                    goto fail;
                tail = v == ns[b - 1 - i];
            }
            if (tail) {
                if (PyList_SetSlice(f, t - k, t, NULL) < 0)
                    goto fail;
            } else {
                for (Py_ssize_t i = a; i < b; i++) {
                    if (swap_remove(f, dpos, ns[i]) < 0)
                        goto fail;
                }
            }
            for (Py_ssize_t i = a; i < b; i++)
                if (set_long(dpos, ns[i], -1) < 0)
                    goto fail;
        }
        if (dom_jump(dbuck, dbpos, datl, p, d, c0, c0 + step * k) < 0)
            goto fail;
        a = b;
    }
    PyBuffer_Release(&dv);
    Py_DECREF(seq);
    PyMem_Free(ns);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&dv);
    Py_DECREF(seq);
    PyMem_Free(ns);
    return NULL;
}

/* ---------------------------------------------------------------- checks ------- */

PyDoc_STRVAR(fits_doc,
"fits(nodes, node_pool, pool, usable, lvl, vcpu, slots, vcpus) -> bool\n\n"
"Every node is of ``pool``, usable, with at least ``slots`` free slots and ``vcpus``\n"
"free vCPUs (within 1e-6), and ``nodes`` not empty: FleetState.allocate's check.");

static PyObject *fits(PyObject *self, PyObject *args) {
    PyObject *nodes, *npool, *usable, *lvl, *vc;
    long pool, slots;
    double vcpus;
    if (!PyArg_ParseTuple(args, "OOlOOOld", &nodes, &npool, &pool, &usable, &lvl, &vc, &slots,
                          &vcpus))
        return NULL;
    if (need_list(npool, "node_pool") || need_list(usable, "usable") || need_list(lvl, "lvl") ||
        need_list(vc, "vcpu"))
        return NULL;
    Py_ssize_t m;
    long *ns = node_array(nodes, &m);
    if (ns == NULL)
        return NULL;
    int ok = m > 0;
    for (Py_ssize_t i = 0; ok && i < m; i++) {
        long n = ns[i];
        if (n < 0 || n >= PyList_GET_SIZE(npool) || n >= PyList_GET_SIZE(usable) ||
            n >= PyList_GET_SIZE(lvl) || n >= PyList_GET_SIZE(vc)) {
            ok = 0; /* the caller's node-by-node check names it */
            break;
        }
        long q = PyLong_AsLong(PyList_GET_ITEM(npool, n));
        int u = PyObject_IsTrue(PyList_GET_ITEM(usable, n));
        long k = PyLong_AsLong(PyList_GET_ITEM(lvl, n));
        double v = PyFloat_AsDouble(PyList_GET_ITEM(vc, n));
        if (PyErr_Occurred() || u < 0) {
            PyMem_Free(ns);
            return NULL;
        }
        ok = q == pool && u && k >= slots && v + 1e-6 >= vcpus;
    }
    PyMem_Free(ns);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(all_idle_doc,
"all_idle(nodes, usable, lvl, slots) -> bool\n\n"
"Every node usable; with ``slots`` >= 0 also with exactly ``slots`` free slots.");

static PyObject *all_idle(PyObject *self, PyObject *args) {
    PyObject *nodes, *usable, *lvl;
    long slots;
    if (!PyArg_ParseTuple(args, "OOOl", &nodes, &usable, &lvl, &slots))
        return NULL;
    if (need_list(usable, "usable") || need_list(lvl, "lvl"))
        return NULL;
    Py_ssize_t m;
    long *ns = node_array(nodes, &m);
    if (ns == NULL)
        return NULL;
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < m; i++) {
        long n = ns[i];
        if (n < 0 || n >= PyList_GET_SIZE(usable) || n >= PyList_GET_SIZE(lvl)) {
            PyMem_Free(ns);
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            return NULL;
        }
        int u = PyObject_IsTrue(PyList_GET_ITEM(usable, n));
        if (u < 0) {
            PyMem_Free(ns);
            return NULL;
        }
        ok = u;
        if (ok && slots >= 0) {
            long k = PyLong_AsLong(PyList_GET_ITEM(lvl, n));
            if (k == -1 && PyErr_Occurred()) {
                PyMem_Free(ns);
                return NULL;
            }
            ok = k == slots;
        }
    }
    PyMem_Free(ns);
    return PyBool_FromLong(ok);
}

/* ---------------------------------------------------------------- vCPUs -------- */

PyDoc_STRVAR(take_vcpus_doc,
"take_vcpus(vcpu, nodes, vcpus) -> list\n\n"
"``vcpu[n] = vcpu[n] - vcpus`` for each node (float arithmetic as Python's); returns\n"
"the new values in node order.");

static PyObject *take_vcpus(PyObject *self, PyObject *args) {
    PyObject *vc, *nodes;
    double vcpus;
    if (!PyArg_ParseTuple(args, "OOd", &vc, &nodes, &vcpus))
        return NULL;
    if (need_list(vc, "vcpu"))
        return NULL;
    Py_ssize_t m;
    long *ns = node_array(nodes, &m);
    if (ns == NULL)
        return NULL;
    PyObject *out = PyList_New(m);
    if (out == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < m; i++) {
        long n = ns[i];
        if (n < 0 || n >= PyList_GET_SIZE(vc)) {
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            goto fail;
        }
        double v = PyFloat_AsDouble(PyList_GET_ITEM(vc, n));
        if (v == -1.0 && PyErr_Occurred())
            goto fail;
        PyObject *o = PyFloat_FromDouble(v - vcpus);
        if (o == NULL)
            goto fail;
        Py_INCREF(o);
        PyList_SET_ITEM(out, i, o);
        PyList_SetItem(vc, n, o); /* steals the second reference */
    }
    PyMem_Free(ns);
    return out;
fail:
    Py_XDECREF(out);
    PyMem_Free(ns);
    return NULL;
}

PyDoc_STRVAR(copy_items_doc,
"copy_items(dst, src, nodes)\n\n``dst[n] = src[n]`` for each node.");

static PyObject *copy_items(PyObject *self, PyObject *args) {
    PyObject *dst, *src, *nodes;
    if (!PyArg_ParseTuple(args, "OOO", &dst, &src, &nodes))
        return NULL;
    if (need_list(dst, "dst") || need_list(src, "src"))
        return NULL;
    Py_ssize_t m;
    long *ns = node_array(nodes, &m);
    if (ns == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < m; i++) {
        long n = ns[i];
        if (n < 0 || n >= PyList_GET_SIZE(src) || n >= PyList_GET_SIZE(dst)) {
            PyMem_Free(ns);
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            return NULL;
        }
        PyObject *o = PyList_GET_ITEM(src, n);
        Py_INCREF(o);
        PyList_SetItem(dst, n, o);
    }
    PyMem_Free(ns);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- picking ------ */

PyDoc_STRVAR(take_from_doc,
"take_from(bucket, exclude, vcpu, v, n, out) -> bool\n\n"
"pick_nodes' scan of one bucket: its nodes from the end, skipping those in ``exclude``\n"
"(a set, or None) and those with ``vcpu[x] + 1e-6 < v``, appended to ``out`` until it\n"
"holds ``n``; True once it does.");

static PyObject *take_from(PyObject *self, PyObject *args) {
    PyObject *b, *ex, *vcpu, *out;
    double v;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!OO!dnO!", &PyList_Type, &b, &ex, &PyList_Type, &vcpu, &v, &n,
                          &PyList_Type, &out))
        return NULL;
    if (ex != Py_None && !PyAnySet_Check(ex)) {
        PyErr_SetString(PyExc_TypeError, "exclude must be a set or None");
        return NULL;
    }
    if (PyList_GET_SIZE(out) >= n)
        Py_RETURN_TRUE;
    for (Py_ssize_t i = PyList_GET_SIZE(b) - 1; i >= 0; i--) {
        PyObject *x = PyList_GET_ITEM(b, i);
        if (ex != Py_None) {
            int c = PySet_Contains(ex, x);
            if (c < 0)
                return NULL;
            if (c)
                continue;
        }
        Py_ssize_t xi = PyLong_AsSsize_t(x);
        if (xi == -1 && PyErr_Occurred())
            return NULL;
        if (xi < 0 || xi >= PyList_GET_SIZE(vcpu)) {
            PyErr_SetString(PyExc_IndexError, "vcpu: node out of range");
            return NULL;
        }
        double free = PyFloat_AsDouble(PyList_GET_ITEM(vcpu, xi));
        if (free == -1.0 && PyErr_Occurred())
            return NULL;
        if (free + 1e-6 < v)
            continue;
        if (PyList_Append(out, x) < 0)
            return NULL;
        if (PyList_GET_SIZE(out) == n)
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(take_domain_idle_doc,
"take_domain_idle(dbuck, dfree, n, out, exclude=None) -> list | None\n\n"
"FleetState.take_domain_idle: whole idle nodes of a pool with multi-node domains\n"
"(``dbuck`` its domains by count of idle nodes), domains with the fewest idle nodes\n"
"first (each bucket from its end), each domain's idle nodes newest first, those in\n"
"``exclude`` (a set, or None) skipped, appended to ``out`` until it holds ``n``;\n"
"``out``, or None when the pool has too few.");

/* One domain's idle nodes for take_domain_idle, newest first, those in ``ex`` (NULL: none)
   skipped, appended to ``out`` until it holds ``n``: 1 once it does, 0 if not yet, -1 on an
   error. */
static int take_domain(PyObject *free, PyObject *ex, Py_ssize_t n, PyObject *out) {
    Py_ssize_t len = PyList_GET_SIZE(free);
    if (ex == NULL) {  /* a slice of the list's end */
        Py_ssize_t need = n - PyList_GET_SIZE(out);
        Py_ssize_t stop = len >= need ? len - need : 0;
        for (Py_ssize_t j = len - 1; j >= stop; j--)
            if (PyList_Append(out, PyList_GET_ITEM(free, j)) < 0)
                return -1;
        return len >= need;
    }
    for (Py_ssize_t j = len - 1; j >= 0; j--) {
        PyObject *x = PyList_GET_ITEM(free, j);
        int skip = PySet_Contains(ex, x);
        if (skip < 0)
            return -1;
        if (skip)
            continue;
        if (PyList_Append(out, x) < 0)
            return -1;
        if (PyList_GET_SIZE(out) == n)
            return 1;
    }
    return 0;
}

static PyObject *take_domain_idle(PyObject *self, PyObject *args) {
    PyObject *dbuck, *dfree, *out, *ex = Py_None;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOnO|O", &dbuck, &dfree, &n, &out, &ex))
        return NULL;
    if (need_list(dbuck, "dbuck") || need_list(dfree, "dfree") || need_list(out, "out"))
        return NULL;
    if (ex != Py_None && !PyAnySet_Check(ex)) {
        PyErr_SetString(PyExc_TypeError, "exclude must be a set or None");
        return NULL;
    }
    PyObject *skip = ex != Py_None && PySet_GET_SIZE(ex) > 0 ? ex : NULL;
    if (skip != NULL && PyList_GET_SIZE(out) >= n) {
        Py_INCREF(out);
        return out;
    }
    for (Py_ssize_t c = 1; c < PyList_GET_SIZE(dbuck); c++) {
        PyObject *doms = PyList_GET_ITEM(dbuck, c);
        if (need_list(doms, "dbuck[c]"))
            return NULL;
        for (Py_ssize_t i = PyList_GET_SIZE(doms) - 1; i >= 0; i--) {
            long d = PyLong_AsLong(PyList_GET_ITEM(doms, i));
            if (d == -1 && PyErr_Occurred())
                return NULL;
            if (d < 0 || d >= PyList_GET_SIZE(dfree)) {
                PyErr_SetString(PyExc_IndexError, "domain out of range");
                return NULL;
            }
            PyObject *free = PyList_GET_ITEM(dfree, d);
            if (need_list(free, "dfree[d]"))
                return NULL;
            int full = take_domain(free, skip, n, out);
            if (full < 0)
                return NULL;
            if (full) {
                Py_INCREF(out);
                return out;
            }
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"take_domain_idle", take_domain_idle, METH_VARARGS, take_domain_idle_doc},
    {"take_from", take_from, METH_VARARGS, take_from_doc},
    {"bulk_level", bulk_level, METH_VARARGS, bulk_level_doc},
    {"bulk_full", bulk_full, METH_VARARGS, bulk_full_doc},
    {"fits", fits, METH_VARARGS, fits_doc},
    {"all_idle", all_idle, METH_VARARGS, all_idle_doc},
    {"take_vcpus", take_vcpus, METH_VARARGS, take_vcpus_doc},
    {"copy_items", copy_items, METH_VARARGS, copy_items_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fleetc", "Compiled hot path of FleetState (see state.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fleetc(void) { return PyModule_Create(&module); }
