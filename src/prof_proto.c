#include <errno.h>
#include "prof.h"
int prof_write_proto(int fd, const prof_bucket_t *s, size_t n)
{
	(void)fd; (void)s; (void)n;
	return ENOSYS;
}
