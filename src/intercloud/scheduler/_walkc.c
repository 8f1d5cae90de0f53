/* Compiled part of the scheduler's walk over the queue (core.py, Scheduler.schedule).
 *
 * In a saturated fleet most queued gangs are held at once by the fast path of
 * Scheduler._one: a gang interchangeable with one that this cycle's _fast_hold held,
 * with no turn since (the mutation count). fast_holds does exactly what that path does,
 * for as many gangs in a row as it can, and hands the first other gang back to Python.
 * plan_counts does the same for the cost plan's loop (Scheduler._plan): a gang of a class
 * the plan has already seen is only counted.
 * Optional: when this does not build or import, core.py walks in Python (the same
 * decisions: tests/scheduler/core/test_core_walk_compiled.py runs both).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyObject *s_job_id, *s_r, *s_seen, *s_acc, *s_fast, *s_hold, *s_held, *s_reason;
static PyObject *s_same, *s_count, *one;

/* Attribute reads and writes straight from an object's slot. The objects walked here
 * (_Job, GangRequest, Decision, GangClass) keep their fields in __slots__, where
 * PyObject_GetAttr finds the member descriptor and reads the slot at its offset; a
 * slot_t caches that offset for one type, valid while the type is unchanged (its
 * version tag), so a read is one load. Any other object, type or descriptor (a
 * property, a type changed since) goes through PyObject_GetAttr/SetAttr as before. */
typedef struct {
    PyTypeObject *tp; /* strong reference; NULL: nothing cached */
    unsigned int tag;
    Py_ssize_t off;
} slot_t;

static slot_t c_job_id, c_r, c_seen, c_acc, c_fast, c_hold, c_held, c_reason, c_same, c_count;

static int cache_slot(PyTypeObject *tp, PyObject *name, slot_t *s) {
    if (tp->tp_getattro != PyObject_GenericGetAttr)
        return 0;
    PyObject *d = _PyType_Lookup(tp, name); /* borrowed; sets the version tag */
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) ||
        !(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) || tp->tp_version_tag == 0)
        return 0;
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY))
        return 0;
    Py_INCREF(tp);
    Py_XSETREF(s->tp, tp);
    s->tag = tp->tp_version_tag;
    s->off = m->offset;
    return 1;
}

static inline int slot_ok(PyObject *obj, PyObject *name, slot_t *s) {
    PyTypeObject *tp = Py_TYPE(obj);
    return (tp == s->tp && tp->tp_version_tag == s->tag) || cache_slot(tp, name, s);
}

/* a new reference to obj.name */
static PyObject *get_attr(PyObject *obj, PyObject *name, slot_t *s) {
    if (slot_ok(obj, name, s)) {
        PyObject *v = *(PyObject **)((char *)obj + s->off);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(obj, name); /* an unset slot raises as Python does */
}

/* obj.name = v where obj's type sets attributes the generic way (no __setattr__) */
static int set_attr(PyObject *obj, PyObject *name, slot_t *s, PyObject *v) {
    if (Py_TYPE(obj)->tp_setattro == PyObject_GenericSetAttr && slot_ok(obj, name, s)) {
        PyObject **p = (PyObject **)((char *)obj + s->off);
        PyObject *old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(obj, name, v);
}

/* The gangs of ``queue`` in ``order`` from position ``start``, each through ``step``
 * (gang, args) while it answers 1 (done in C); the position of the first it does not
 * (0: Python's turn; ``len(order)`` at the end), or -1 with an exception set. */
typedef int (*step_fn)(PyObject *r, PyObject **args);

static Py_ssize_t walk(PyObject *order, PyObject *queue, Py_ssize_t start, step_fn step,
                       PyObject **args) {
    Py_ssize_t n = PyList_GET_SIZE(order);
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < n; i++) {
        Py_ssize_t q = PyLong_AsSsize_t(PyList_GET_ITEM(order, i));
        if (q == -1 && PyErr_Occurred())
            return -1;
        if (q < 0 || q >= PyList_GET_SIZE(queue)) {
            PyErr_SetString(PyExc_IndexError, "order: index out of the queue");
            return -1;
        }
        int rc = step(PyList_GET_ITEM(queue, q), args);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
    }
    return i;
}

PyDoc_STRVAR(fast_holds_doc,
"fast_holds(order, queue, jobs, fast, mut, allocations, out, start) -> int\n\n"
"From position ``start`` of ``order`` (indices into ``queue``), each gang that\n"
"Scheduler._one's fast path would hold with the HOLD it kept (``_Job.hold``, same\n"
"reason) gets it appended to ``out`` (and ``held`` None, ``acc`` the class's\n"
"versions); returns the position of the first gang it cannot hold so\n"
"(``len(order)`` at the end): Python takes that one's turn.");

/* 1: held here; 0: not this path (Python's turn); -1: error */
static int hold_one(PyObject *r, PyObject *jobs, PyObject *fast, PyObject *mut,
                    PyObject *allocations, PyObject *out) {
    int rc = 0;
    PyObject *jid = NULL, *ent = NULL, *er = NULL, *seen = NULL, *acc = NULL, *fk = NULL;
    PyObject *hold = NULL, *reason = NULL;
    jid = get_attr(r, s_job_id, &c_job_id);
    if (jid == NULL)
        return -1;
    int running = PyDict_Contains(allocations, jid);
    if (running != 0) { /* error, or queued but running: Python raises */
        rc = running < 0 ? -1 : 0;
        goto done;
    }
    ent = PyDict_GetItemWithError(jobs, jid); /* borrowed */
    if (ent == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    Py_INCREF(ent);
    if ((er = get_attr(ent, s_r, &c_r)) == NULL) { rc = -1; goto done; }
    if (er != r) goto done;
    if ((seen = get_attr(ent, s_seen, &c_seen)) == NULL) { rc = -1; goto done; }
    if (seen != Py_None) goto done;
    if ((acc = get_attr(ent, s_acc, &c_acc)) == NULL) { rc = -1; goto done; }
    if (acc == Py_None) goto done;
    if ((fk = get_attr(ent, s_fast, &c_fast)) == NULL) { rc = -1; goto done; }
    PyObject *got = PyDict_GetItemWithError(fast, fk); /* borrowed */
    if (got == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    if (!PyTuple_Check(got) || PyTuple_GET_SIZE(got) != 3) goto done;
    int same_mut = PyObject_RichCompareBool(PyTuple_GET_ITEM(got, 0), mut, Py_EQ);
    if (same_mut <= 0) { rc = same_mut; goto done; }
    if ((hold = get_attr(ent, s_hold, &c_hold)) == NULL) { rc = -1; goto done; }
    if (hold == Py_None) goto done;
    if ((reason = get_attr(hold, s_reason, &c_reason)) == NULL) { rc = -1; goto done; }
    int same_reason = PyObject_RichCompareBool(reason, PyTuple_GET_ITEM(got, 1), Py_EQ);
    if (same_reason <= 0) { rc = same_reason; goto done; }
    if (PyList_Append(out, hold) < 0 || set_attr(ent, s_held, &c_held, Py_None) < 0 ||
        set_attr(ent, s_acc, &c_acc, PyTuple_GET_ITEM(got, 2)) < 0) {
        rc = -1;
        goto done;
    }
    rc = 1;
done:
    Py_XDECREF(jid);
    Py_XDECREF(ent);
    Py_XDECREF(er);
    Py_XDECREF(seen);
    Py_XDECREF(acc);
    Py_XDECREF(fk);
    Py_XDECREF(hold);
    Py_XDECREF(reason);
    return rc;
}

/* hold_one with fast_holds' arguments: jobs, fast, mut, allocations, out */
static int hold_step(PyObject *r, PyObject **a) {
    return hold_one(r, a[0], a[1], a[2], a[3], a[4]);
}

static PyObject *fast_holds(PyObject *self, PyObject *args) {
    PyObject *order, *queue, *a[5];
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OO!O!n", &PyList_Type, &order, &PyList_Type, &queue,
                          &PyDict_Type, &a[0], &PyDict_Type, &a[1], &a[2], &PyDict_Type,
                          &a[3], &PyList_Type, &a[4], &start))
        return NULL;
    Py_ssize_t at = walk(order, queue, start, hold_step, a);
    return at < 0 ? NULL : PyLong_FromSsize_t(at);
}

PyDoc_STRVAR(plan_counts_doc,
"plan_counts(order, queue, jobs, same, classes, keys, start) -> int\n\n"
"The counting step of Scheduler._plan: from position ``start`` of ``order``, each gang\n"
"whose interchangeability class (``_Job.same``) this cycle's plan has already seen is\n"
"counted in its class as the Python loop does (``GangClass.count`` + 1 and\n"
"``keys[job_id]``, or nothing when the class was left out); returns the position of\n"
"the first other gang (``len(order)`` at the end): Python takes that one.");

/* 1: counted (or skipped) here; 0: Python's; -1: error */
static int count_one(PyObject *r, PyObject *jobs, PyObject *same, PyObject *classes,
                     PyObject *keys) {
    int rc = 0;
    PyObject *jid = NULL, *ent = NULL, *er = NULL, *sk = NULL, *cnt = NULL, *cnt1 = NULL;
    jid = get_attr(r, s_job_id, &c_job_id);
    if (jid == NULL)
        return -1;
    ent = PyDict_GetItemWithError(jobs, jid); /* borrowed */
    if (ent == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    Py_INCREF(ent);
    if ((er = get_attr(ent, s_r, &c_r)) == NULL) { rc = -1; goto done; }
    if (er != r) goto done;
    if ((sk = get_attr(ent, s_same, &c_same)) == NULL) { rc = -1; goto done; }
    if (!PyLong_Check(sk)) goto done;
    long skv = PyLong_AsLong(sk);
    if (skv == -1 && PyErr_Occurred()) { rc = -1; goto done; }
    if (skv < 0) goto done;
    PyObject *ck = PyDict_GetItemWithError(same, sk); /* borrowed */
    if (ck == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    rc = 1;
    if (ck == Py_None)
        goto done; /* a class left out of the plan: nothing to count */
    Py_INCREF(ck);
    PyObject *c = PyDict_GetItemWithError(classes, ck); /* borrowed */
    if (c == NULL) {
        if (PyErr_Occurred())
            rc = -1;
        Py_DECREF(ck);
        goto done;
    }
    Py_INCREF(c);
    if ((cnt = get_attr(c, s_count, &c_count)) == NULL ||
        (cnt1 = PyNumber_Add(cnt, one)) == NULL ||
        set_attr(c, s_count, &c_count, cnt1) < 0 || PyDict_SetItem(keys, jid, ck) < 0)
        rc = -1;
    Py_DECREF(c);
    Py_DECREF(ck);
done:
    Py_XDECREF(jid);
    Py_XDECREF(ent);
    Py_XDECREF(er);
    Py_XDECREF(sk);
    Py_XDECREF(cnt);
    Py_XDECREF(cnt1);
    return rc;
}

/* count_one with plan_counts' arguments: jobs, same, classes, keys */
static int count_step(PyObject *r, PyObject **a) {
    return count_one(r, a[0], a[1], a[2], a[3]);
}

static PyObject *plan_counts(PyObject *self, PyObject *args) {
    PyObject *order, *queue, *a[4];
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!n", &PyList_Type, &order, &PyList_Type, &queue,
                          &PyDict_Type, &a[0], &PyDict_Type, &a[1], &PyDict_Type, &a[2],
                          &PyDict_Type, &a[3], &start))
        return NULL;
    Py_ssize_t at = walk(order, queue, start, count_step, a);
    return at < 0 ? NULL : PyLong_FromSsize_t(at);
}

PyDoc_STRVAR(rows_by_id_doc,
"rows_by_id(items, rows, out) -> None\n\n"
"``out[i] = rows.get(id(items[i]), -1)`` for each item of the list ``items``, into the\n"
"writable int64 buffer ``out`` of ``len(items)``: the per-request column cache's\n"
"lookup (queue_order/columns.py) without a Python call per request.");

static PyObject *rows_by_id(PyObject *self, PyObject *args) {
    PyObject *items, *rows;
    Py_buffer out;
    if (!PyArg_ParseTuple(args, "O!O!w*", &PyList_Type, &items, &PyDict_Type, &rows, &out))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    if (out.itemsize != 8 || out.len != n * 8 || !PyBuffer_IsContiguous(&out, 'C')) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "out: a contiguous int64 buffer of len(items)");
        return NULL;
    }
    long long *o = (long long *)out.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyLong_FromVoidPtr(PyList_GET_ITEM(items, i)); /* id(item) */
        if (key == NULL)
            goto fail;
        PyObject *v = PyDict_GetItemWithError(rows, key); /* borrowed */
        Py_DECREF(key);
        if (v == NULL) {
            if (PyErr_Occurred())
                goto fail;
            o[i] = -1;
            continue;
        }
        o[i] = PyLong_AsLongLong(v);
        if (o[i] == -1 && PyErr_Occurred())
            goto fail;
    }
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"rows_by_id", rows_by_id, METH_VARARGS, rows_by_id_doc},
    {"fast_holds", fast_holds, METH_VARARGS, fast_holds_doc},
    {"plan_counts", plan_counts, METH_VARARGS, plan_counts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walkc", "Compiled part of the scheduler's queue walk (core.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__walkc(void) {
#define INTERN(v, s) if ((v = PyUnicode_InternFromString(s)) == NULL) return NULL
    INTERN(s_job_id, "job_id");
    INTERN(s_r, "r");
    INTERN(s_seen, "seen");
    INTERN(s_acc, "acc");
    INTERN(s_fast, "fast");
    INTERN(s_hold, "hold");
    INTERN(s_held, "held");
    INTERN(s_reason, "reason");
    INTERN(s_same, "same");
    INTERN(s_count, "count");
    if ((one = PyLong_FromLong(1)) == NULL)
        return NULL;
#undef INTERN
    return PyModule_Create(&module);
}
