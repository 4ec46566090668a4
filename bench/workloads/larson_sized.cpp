// The C++ side of pcb_larson_sized (see larson.c): operator new[] and the
// sized operator delete[], called from C. Built with -fsized-deallocation so
// the sized overload is the one the program links to, as in a C++14 program.
#include <cstddef>
#include <new>

extern "C" void *larson_new(std::size_t n)
{
	return ::operator new[](n);
}

extern "C" void larson_delete(void *p, std::size_t n)
{
	::operator delete[](p, n);
}
