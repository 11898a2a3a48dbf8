"""Training for the full-mode models (LoRA instruction tuning of the VLM, CLIP and
diffusion fine-tuning) and the instruction data they learn from. Each command is a module
with HELP, add_arguments and run, wired into ``rschat train`` by rschat.cli.PLUGGED;
torch and the model libraries are imported inside run() only."""
