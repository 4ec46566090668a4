/*
 * Which DLL the running exe imports a function from, read from its own PE
 * import directory: proves what the link-time override bound each name to.
 */
#ifndef PC_PE_IMPORTS_H
#define PC_PE_IMPORTS_H

#include <string.h>
#include <windows.h>

/* The DLL (as named in the import table) `fn` is imported from, or NULL
 * if the exe does not import it (it is defined inside the exe). */
static inline const char *
pe_import_dll(const char *fn)
{
	unsigned char *base = (unsigned char *)GetModuleHandleA(NULL);
	IMAGE_NT_HEADERS *nt = (IMAGE_NT_HEADERS *)(base +
	    ((IMAGE_DOS_HEADER *)base)->e_lfanew);
	IMAGE_DATA_DIRECTORY *dir =
	    &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
	if (dir->Size == 0)
		return NULL;
	for (IMAGE_IMPORT_DESCRIPTOR *d = (IMAGE_IMPORT_DESCRIPTOR *)(base +
	    dir->VirtualAddress); d->Name != 0; d++) {
		DWORD rva = d->OriginalFirstThunk ? d->OriginalFirstThunk :
		    d->FirstThunk;
		for (IMAGE_THUNK_DATA *t = (IMAGE_THUNK_DATA *)(base + rva);
		    t->u1.AddressOfData != 0; t++) {
			if (IMAGE_SNAP_BY_ORDINAL(t->u1.Ordinal))
				continue;
			IMAGE_IMPORT_BY_NAME *ibn = (IMAGE_IMPORT_BY_NAME *)(
			    base + t->u1.AddressOfData);
			if (strcmp((const char *)ibn->Name, fn) == 0)
				return (const char *)(base + d->Name);
		}
	}
	return NULL;
}

#endif
