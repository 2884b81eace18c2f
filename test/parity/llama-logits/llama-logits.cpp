// llama-logits: every position's logits from llama.cpp, through the shared libraries that
// node-llama-cpp ships, with a chosen CPU build of ggml. Used by
// test/parity/cpu-variants.test.ts to measure how closely llama.cpp's own CPU builds
// agree with each other on a file (the floor for any independent implementation).
//
//   llama-logits <backend> <model.gguf> <tokens.txt> <out.bin>
//
// <backend>: a directory (load the best CPU build for this machine from it, as
// node-llama-cpp does) or one libggml-cpu-*.so file (exactly that build).
// <tokens.txt>: one sequence per line, token ids separated by spaces. Each sequence is
// evaluated from an empty cache in one batch, without flash attention, on 2 threads.
// <out.bin>: float32 logits, [sequence][position][vocab], appended in order.
// Prints the path of the CPU build in use on stdout.
#include "ggml-backend.h"
#include "llama.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

static std::string loaded_from;

static void on_log(ggml_log_level, const char * text, void *) {
    // ggml announces each backend library it loads; keep the CPU one, drop the rest.
    const char * tag = "loaded CPU backend from ";
    if (const char * at = std::strstr(text, tag)) {
        loaded_from = at + std::strlen(tag);
        while (!loaded_from.empty() && (loaded_from.back() == '\n' || loaded_from.back() == ' ')) loaded_from.pop_back();
    }
}

static int fail(const std::string & why) {
    std::fprintf(stderr, "llama-logits: %s\n", why.c_str());
    return 1;
}

int main(int argc, char ** argv) {
    if (argc != 5) return fail("usage: llama-logits <backend dir | libggml-cpu-*.so> <model.gguf> <tokens.txt> <out.bin>");
    llama_log_set(on_log, nullptr);
    ggml_log_set(on_log, nullptr);

    struct stat st {};
    if (stat(argv[1], &st) != 0) return fail(std::string("no such backend: ") + argv[1]);
    if (S_ISDIR(st.st_mode)) {
        ggml_backend_load_all_from_path(argv[1]);
    } else if (!ggml_backend_load(argv[1])) {
        return fail(std::string("cannot load ") + argv[1]);
    } else {
        loaded_from = argv[1];
    }
    if (!ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) return fail("no CPU backend loaded");

    std::vector<std::vector<llama_token>> sequences;
    {
        std::ifstream in(argv[3]);
        if (!in) return fail(std::string("cannot read ") + argv[3]);
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream words(line);
            std::vector<llama_token> seq;
            long id;
            while (words >> id) seq.push_back((llama_token) id);
            if (!seq.empty()) sequences.push_back(std::move(seq));
        }
    }
    size_t longest = 0;
    for (auto & s : sequences) longest = std::max(longest, s.size());
    if (longest == 0) return fail("no token sequences");

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[2], mp);
    if (!model) return fail(std::string("cannot load model ") + argv[2]);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) std::max<size_t>(128, longest);
    cp.n_batch = cp.n_ubatch = cp.n_ctx;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) return fail("cannot create a context");

    FILE * out = std::fopen(argv[4], "wb");
    if (!out) return fail(std::string("cannot write ") + argv[4]);
    int rc = 0;
    for (auto & seq : sequences) {
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_batch batch = llama_batch_init((int32_t) seq.size(), 0, 1);
        for (size_t i = 0; i < seq.size(); i++) {
            batch.token[i] = seq[i];
            batch.pos[i] = (llama_pos) i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = (int32_t) seq.size();
        if (llama_decode(ctx, batch) != 0) {
            rc = fail("llama_decode failed");
        } else {
            for (size_t i = 0; i < seq.size(); i++) std::fwrite(llama_get_logits_ith(ctx, (int32_t) i), sizeof(float), n_vocab, out);
        }
        llama_batch_free(batch);
        if (rc) break;
    }
    std::fclose(out);
    llama_free(ctx);
    llama_model_free(model);
    if (rc == 0) std::printf("%s\n", loaded_from.c_str());
    return rc;
}
