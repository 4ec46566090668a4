/*
 * smallobj: a small-object program with mixed lifetimes, in the spirit of
 * the cfrac and espresso programs of the classic allocator studies (Zorn,
 * Grunwald; used again by Hoard, mimalloc-bench).
 *
 *   smallobj THREADS STEPS [VOCAB]
 *
 * Two interleaved phases, STEPS units each:
 *  - bignum: continued-fraction convergents p_k = a_k p_{k-1} + p_{k-2}
 *    with immutable heap bignums (every operation allocates its result and
 *    the dead operands are freed), like cfrac's arithmetic. Numbers grow
 *    from 8 bytes to a few KiB, then a new expansion starts; products of two
 *    convergents make short-lived bigger blocks.
 *  - symbol table: a treap of words (node, separately allocated key string,
 *    and a linked list of small value cells), with random inserts, deletes
 *    and lookups that build temporary strings - long-lived and short-lived
 *    small objects mixed, like a compiler's or espresso's tables.
 * THREADS > 1 runs independent copies (STEPS split between them); the
 * runner uses it single-threaded.
 */
#include "common.h"

/* ---------------------------------------------------------------- bignum */

typedef struct {
	uint32_t n;
	uint32_t d[];
} bn;

static bn *bn_new(uint32_t n)
{
	bn *r = pcb_malloc(sizeof(bn) + (size_t)(n ? n : 1) * sizeof(uint32_t));
	r->n = n;
	return r;
}

static bn *bn_small(uint32_t v)
{
	bn *r = bn_new(1);
	r->d[0] = v;
	return r;
}

static bn *bn_trim(bn *r)
{
	while (r->n > 1 && r->d[r->n - 1] == 0)
		r->n--;
	return r;
}

static bn *bn_add(const bn *a, const bn *b)
{
	if (a->n < b->n) {
		const bn *t = a;
		a = b;
		b = t;
	}
	bn *r = bn_new(a->n + 1);
	uint64_t c = 0;
	for (uint32_t i = 0; i < a->n; i++) {
		c += (uint64_t)a->d[i] + (i < b->n ? b->d[i] : 0);
		r->d[i] = (uint32_t)c;
		c >>= 32;
	}
	r->d[a->n] = (uint32_t)c;
	return bn_trim(r);
}

static bn *bn_mul_small(const bn *a, uint32_t m)
{
	bn *r = bn_new(a->n + 1);
	uint64_t c = 0;
	for (uint32_t i = 0; i < a->n; i++) {
		c += (uint64_t)a->d[i] * m;
		r->d[i] = (uint32_t)c;
		c >>= 32;
	}
	r->d[a->n] = (uint32_t)c;
	return bn_trim(r);
}

static bn *bn_mul(const bn *a, const bn *b)
{
	bn *r = bn_new(a->n + b->n);
	memset(r->d, 0, (size_t)r->n * sizeof(uint32_t));
	for (uint32_t i = 0; i < a->n; i++) {
		uint64_t c = 0;
		for (uint32_t j = 0; j < b->n; j++) {
			c += (uint64_t)a->d[i] * b->d[j] + r->d[i + j];
			r->d[i + j] = (uint32_t)c;
			c >>= 32;
		}
		r->d[i + b->n] = (uint32_t)c;
	}
	return bn_trim(r);
}

static uint32_t bn_mod_small(const bn *a, uint32_t m)
{
	uint64_t r = 0;
	for (uint32_t i = a->n; i-- > 0;)
		r = ((r << 32) | a->d[i]) % m;
	return (uint32_t)r;
}

struct cf {
	bn *p1, *p2, *q1, *q2; /* p_{k-1}, p_{k-2}, q_{k-1}, q_{k-2} */
	uint32_t k, len;
};

static void cf_reset(struct cf *c, pcb_rng *rng)
{
	free(c->p1);
	free(c->p2);
	free(c->q1);
	free(c->q2);
	c->p1 = bn_small((uint32_t)pcb_range(rng, 1, 1000));
	c->p2 = bn_small(1);
	c->q1 = bn_small(1);
	c->q2 = bn_small(0);
	c->k = 0;
	c->len = (uint32_t)pcb_range(rng, 100, 600);
}

static uint64_t cf_step(struct cf *c, pcb_rng *rng)
{
	uint32_t a = (uint32_t)pcb_range(rng, 1, 2000);
	bn *t = bn_mul_small(c->p1, a);
	bn *p = bn_add(t, c->p2);
	free(t);
	t = bn_mul_small(c->q1, a);
	bn *q = bn_add(t, c->q2);
	free(t);
	free(c->p2);
	free(c->q2);
	c->p2 = c->p1;
	c->q2 = c->q1;
	c->p1 = p;
	c->q1 = q;
	uint64_t h = bn_mod_small(p, 1000003) + ((uint64_t)bn_mod_small(q, 999983) << 20);
	if (++c->k % 16 == 0) {
		bn *pq = bn_mul(p, q);
		h ^= (uint64_t)bn_mod_small(pq, 4294967291u) << 24;
		free(pq);
	}
	if (c->k >= c->len)
		cf_reset(c, rng);
	return h;
}

/* ---------------------------------------------------------- symbol table */

struct cell {
	struct cell *next;
	uint64_t v;
};

struct node {
	struct node *l, *r;
	char *key;
	uint64_t prio;
	struct cell *vals;
	size_t nvals;
};

static char *make_word(uint64_t v, char *buf)
{
	uint64_t h = pcb_mix64(v);
	size_t len = 3 + (size_t)(h % 14);
	for (size_t i = 0; i < len; i++) {
		buf[i] = (char)('a' + (h >> (i % 12 * 5)) % 26);
		if (i % 12 == 11)
			h = pcb_mix64(h);
	}
	buf[len] = 0;
	return buf;
}

static struct node *rot_r(struct node *n)
{
	struct node *l = n->l;
	n->l = l->r;
	l->r = n;
	return l;
}

static struct node *rot_l(struct node *n)
{
	struct node *r = n->r;
	n->r = r->l;
	r->l = n;
	return r;
}

static void free_node(struct node *n)
{
	for (struct cell *c = n->vals, *nx; c; c = nx) {
		nx = c->next;
		free(c);
	}
	free(n->key);
	free(n);
}

static struct node *t_insert(struct node *t, const char *key, uint64_t v,
			     uint64_t prio, uint64_t *res)
{
	if (!t) {
		struct node *n = pcb_malloc(sizeof *n);
		size_t len = strlen(key);
		n->key = pcb_malloc(len + 1);
		memcpy(n->key, key, len + 1);
		n->l = n->r = NULL;
		n->prio = prio;
		n->vals = pcb_malloc(sizeof(struct cell));
		n->vals->next = NULL;
		n->vals->v = v;
		n->nvals = 1;
		*res += 1;
		return n;
	}
	int c = strcmp(key, t->key);
	if (c == 0) {
		struct cell *cl = pcb_malloc(sizeof *cl);
		cl->v = v;
		cl->next = t->vals;
		t->vals = cl;
		t->nvals++;
		*res += t->nvals * 7;
	} else if (c < 0) {
		t->l = t_insert(t->l, key, v, prio, res);
		if (t->l->prio > t->prio)
			t = rot_r(t);
	} else {
		t->r = t_insert(t->r, key, v, prio, res);
		if (t->r->prio > t->prio)
			t = rot_l(t);
	}
	return t;
}

static struct node *t_delete(struct node *t, const char *key, uint64_t *res)
{
	if (!t)
		return NULL;
	int c = strcmp(key, t->key);
	if (c < 0) {
		t->l = t_delete(t->l, key, res);
	} else if (c > 0) {
		t->r = t_delete(t->r, key, res);
	} else if (!t->l || !t->r) {
		struct node *k = t->l ? t->l : t->r;
		*res += t->nvals * 131 + strlen(t->key);
		free_node(t);
		return k;
	} else if (t->l->prio > t->r->prio) {
		t = rot_r(t);
		t->r = t_delete(t->r, key, res);
	} else {
		t = rot_l(t);
		t->l = t_delete(t->l, key, res);
	}
	return t;
}

static const struct node *t_find(const struct node *t, const char *key)
{
	while (t) {
		int c = strcmp(key, t->key);
		if (!c)
			return t;
		t = c < 0 ? t->l : t->r;
	}
	return NULL;
}

static uint64_t t_walk_free(struct node *t, uint64_t h)
{
	while (t) {
		h = t_walk_free(t->l, h);
		for (const char *s = t->key; *s; s++)
			h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
		h += t->nvals;
		struct node *r = t->r;
		free_node(t);
		t = r;
	}
	return h;
}

static uint64_t table_op(struct node **root, pcb_rng *rng, size_t vocab)
{
	char w[32], w2[32];
	uint64_t res = 0;
	uint64_t v = pcb_rand(rng) % vocab;
	unsigned op = (unsigned)(pcb_rand(rng) % 10);
	make_word(v, w);
	if (op < 5) {
		*root = t_insert(*root, w, pcb_rand(rng), pcb_rand(rng), &res);
	} else if (op < 8) {
		*root = t_delete(*root, w, &res);
	} else {
		/* lookup two words and build a temporary joined string */
		const struct node *a = t_find(*root, w);
		const struct node *b = t_find(*root,
			make_word(pcb_rand(rng) % vocab, w2));
		size_t la = strlen(w), lb = strlen(w2);
		char *tmp = pcb_malloc(la + lb + 2);
		memcpy(tmp, w, la);
		tmp[la] = '-';
		memcpy(tmp + la + 1, w2, lb + 1);
		res += strlen(tmp) + (a ? a->nvals : 0) * 3 + (b ? b->nvals : 0);
		free(tmp);
	}
	return res;
}

/* ----------------------------------------------------------------- driver */

/* Read-only settings, shared by every thread. */
struct program {
	size_t steps, vocab;	// steps per thread
};

static uint64_t worker(int id, void *shared)
{
	const struct program *a = shared;
	pcb_rng rng;
	pcb_rng_seed(&rng, (uint64_t)id, 3);
	struct cf c = { 0 };
	cf_reset(&c, &rng);
	struct node *root = NULL;
	uint64_t sum = 0;
	for (size_t s = 0; s < a->steps; s++) {
		sum = sum * 31 + cf_step(&c, &rng);
		for (int k = 0; k < 8; k++)
			sum += table_op(&root, &rng, a->vocab);
	}
	sum = t_walk_free(root, sum);
	free(c.p1);
	free(c.p2);
	free(c.q1);
	free(c.q2);
	return sum;
}

int main(int argc, char **argv)
{
	int threads = (int)pcb_arg(argc, argv, 1, 1);
	size_t steps = (size_t)pcb_arg(argc, argv, 2, 200000);
	size_t vocab = (size_t)pcb_arg(argc, argv, 3, 50000);
	if (threads < 1 || vocab < 1)
		pcb_die("usage: smallobj THREADS STEPS [VOCAB]");
	struct program prog = { .steps = steps / (size_t)threads,
		.vocab = vocab };
	/* one thread runs on main's own, like the programs smallobj models */
	uint64_t sum = threads == 1 ? worker(0, &prog)
				    : pcb_run_threads(threads, worker, &prog);
	pcb_result("smallobj", sum);
	return 0;
}
