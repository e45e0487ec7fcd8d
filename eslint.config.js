// ESLint for the project's JavaScript (make lint): the web page is ES modules in the
// browser; the receiver kit is CommonJS for Node.js. Formatting is Prettier's (.prettierrc.json).
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    ignores: ["node_modules/", ".venv/", "build/", "dist/", ".devstack/"],
  },
  js.configs.recommended,
  {
    files: ["services/profile-api/profile_api/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: globals.browser,
    },
  },
  {
    files: ["receivers/node/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "commonjs",
      globals: globals.node,
    },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: globals.node },
  },
];
