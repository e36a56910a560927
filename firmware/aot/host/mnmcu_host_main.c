/*
 * mnmcu_host_main.c - run the AOT model of a generated folder on the host.
 *
 * Build (mnmcu.emit.host.compile_host does this):
 *     gcc -std=c99 -O2 -I<folder> <every .c file of folder> mnmcu_host_main.c
 * where <folder> is what mnmcu.emit.aot.emit_aot wrote; its mnmcu_model.h
 * names the model.
 *
 * Usage: mnmcu_host [FILE]
 *        mnmcu_host --info
 * Reads inputs of MNMCU_MODEL_INPUT_SIZE raw int8 bytes each from FILE (or
 * stdin when FILE is absent or "-"), runs the model on each and writes the
 * raw int8 outputs, MNMCU_MODEL_OUTPUT_SIZE bytes each, to stdout.
 *
 * Built with -DMNMCU_DUMP_LAYERS, stdout instead carries records
 *     uint32 index (little endian), uint32 size (little endian), size bytes
 * one after every op (index = the op's index in the .tflite, bytes = its
 * output tensor), and after every inference a record with index 0xFFFFFFFF
 * holding the model output.
 *
 * --info prints the model's name, input and output shapes and arena size, one
 * "key value..." line each.
 *
 * Exit status: 0 success, 1 usage or I/O error, 2 truncated input, 3 the
 * model returned an error (named on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnmcu_model.h"

static int8_t s_input[MNMCU_MODEL_INPUT_SIZE];
static int8_t s_output[MNMCU_MODEL_OUTPUT_SIZE];

#ifdef MNMCU_DUMP_LAYERS
static int write_u32le(FILE *f, uint32_t v)
{
    unsigned char b[4];
    b[0] = (unsigned char)(v & 0xFFu);
    b[1] = (unsigned char)((v >> 8) & 0xFFu);
    b[2] = (unsigned char)((v >> 16) & 0xFFu);
    b[3] = (unsigned char)((v >> 24) & 0xFFu);
    return fwrite(b, 1, 4, f) == 4;
}

static int write_record(uint32_t index, const void *data, uint32_t size)
{
    return write_u32le(stdout, index) && write_u32le(stdout, size) &&
           fwrite(data, 1, size, stdout) == size;
}

void mnmcu_layer_hook(int32_t index, const char *opname)
{
    int32_t i;
    (void)opname;
    for (i = 0; i < MNMCU_MODEL_OP_COUNT; ++i) {
        const mnmcu_layer_info_t *layer = &mnmcu_model_layers[i];
        if (layer->index == index) {
            if (!write_record((uint32_t)index, mnmcu_model_arena() + layer->offset, layer->size)) {
                fprintf(stderr, "mnmcu_host: cannot write layer %ld\n", (long)index);
                exit(1);
            }
            return;
        }
    }
}
#endif

static void print_shape(const char *key, const int32_t *dims, int rank)
{
    int i;
    printf("%s", key);
    for (i = 0; i < rank; ++i) {
        printf(" %ld", (long)dims[i]);
    }
    printf("\n");
}

static int print_info(void)
{
    static const int32_t input_shape[] = MNMCU_MODEL_INPUT_SHAPE;
    static const int32_t output_shape[] = MNMCU_MODEL_OUTPUT_SHAPE;
    printf("name %s\n", MNMCU_MODEL_NAME);
    print_shape("input_shape", input_shape, MNMCU_MODEL_INPUT_RANK);
    print_shape("output_shape", output_shape, MNMCU_MODEL_OUTPUT_RANK);
    printf("arena_size %ld\n", (long)MNMCU_MODEL_ARENA_SIZE);
    printf("op_count %ld\n", (long)MNMCU_MODEL_OP_COUNT);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    FILE *in = stdin;
    long count = 0;
    if (argc > 2) {
        fprintf(stderr, "usage: %s [FILE | --info]\n", argv[0]);
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--info") == 0) {
        return print_info();
    }
    if (argc == 2 && strcmp(argv[1], "-") != 0) {
        in = fopen(argv[1], "rb");
        if (in == NULL) {
            fprintf(stderr, "mnmcu_host: cannot open %s\n", argv[1]);
            return 1;
        }
    }
    for (;;) {
        mnmcu_status_t status;
        size_t got = fread(s_input, 1, sizeof s_input, in);
        if (got == 0 && feof(in)) {
            break;
        }
        if (got != sizeof s_input) {
            fprintf(stderr, "mnmcu_host: input %ld is truncated: %lu of %lu bytes\n", count,
                    (unsigned long)got, (unsigned long)sizeof s_input);
            return 2;
        }
        status = mnmcu_model_invoke(s_input, s_output);
        if (status != MNMCU_OK) {
            fprintf(stderr, "mnmcu_host: input %ld: model error %d (%s)\n", count, (int)status,
                    mnmcu_status_str(status));
            return 3;
        }
#ifdef MNMCU_DUMP_LAYERS
        if (!write_record(0xFFFFFFFFu, s_output, (uint32_t)sizeof s_output)) {
            fprintf(stderr, "mnmcu_host: cannot write output %ld\n", count);
            return 1;
        }
#else
        if (fwrite(s_output, 1, sizeof s_output, stdout) != sizeof s_output) {
            fprintf(stderr, "mnmcu_host: cannot write output %ld\n", count);
            return 1;
        }
#endif
        ++count;
    }
    if (in != stdin) {
        fclose(in);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
