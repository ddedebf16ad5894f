/**
 * The one pattern for the names of models (checkpoints), presets and datasets: a letter or digit, then up to
 * 63 letters, digits, `.`, `-` or `_`. Such a name is safe as a folder name and in a chat command.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What {@link NAME_PATTERN} allows, in words (for error messages). */
export const NAME_RULE = 'letters, digits, `.`, `-` and `_` (up to 64 characters)';

/** True when `name` matches {@link NAME_PATTERN}. */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}
