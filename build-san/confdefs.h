/* confdefs.h */
#define PACKAGE_NAME "dirmig"
#define PACKAGE_TARNAME "dirmig"
#define PACKAGE_VERSION "0.1.0"
#define PACKAGE_STRING "dirmig 0.1.0"
#define PACKAGE_BUGREPORT "dirmig@example.invalid"
#define PACKAGE_URL ""
#define PACKAGE "dirmig"
#define VERSION "0.1.0"
#define HAVE_STDIO_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_STDINT_H 1
#define HAVE_STRINGS_H 1
